// Finishing a region: Submit, Nothing to label, the Cannot-assess dialog, then Next region.
(function (HC) {
  "use strict";

  HC.workspace = HC.workspace || {};

  var OUTCOME_TEXT = { shapes: "with shapes", nothing: "as nothing to label",
                       cannot_assess: "as cannot assess" };

  // Adds setReadOnly and finish to ws, and wires the finishing buttons and dialog.
  HC.workspace.finish = function (ws) {
    var state = ws.state, editor = ws.editor, config = ws.config, $ = ws.$;

    // A submitted region is final for its annotator: view only, and Next region opens.
    function setReadOnly(readOnly, work) {
      state.readOnly = readOnly;
      document.body.dataset.submission = work ? work.status : "";
      $("ws-final").hidden = !readOnly;
      if (readOnly && work) {
        var outcome = OUTCOME_TEXT[work.outcome] || "";
        $("ws-final-text").textContent = "Submitted " + outcome + ". This region is final for you.";
      }
      ws.setTool("move");
      document.querySelectorAll("[data-edit]").forEach(function (node) {
        node.disabled = readOnly;
      });
      $("ws-next").disabled = !readOnly;
      $("ws-next").title = readOnly ? "" : "Submit this region first";
      ws.renderShapeList();
      ws.refreshControls();
    }

    function finish(outcome, reason) {
      if (state.readOnly) {
        return;
      }
      if (state.drawing) {
        ws.notice("Finish the outline you are drawing (Enter) or cancel it (Esc) first.", "warn");
        return;
      }
      if (outcome === "shapes" && !editor.shapes.length && config.project.polygonAnnotations &&
          !config.project.regionLabels) {
        ws.notice("Draw at least one shape, or choose Nothing to label or Cannot assess.", "warn");
        return;
      }
      if (outcome !== "shapes" && editor.shapes.length) {
        var n = editor.shapes.length;
        if (!window.confirm("Submitting as \"" + (outcome === "nothing" ? "nothing to label" :
            "cannot assess") + "\" removes your " + n + (n === 1 ? " shape" : " shapes") +
            ". Continue?")) {
          return;
        }
        editor.change("clear", function () { this.shapes = []; });
      }
      busy(true);
      state.pending = true; // one last save carries the final time spent
      ws.save().then(function (saved) {
        if (!saved) {
          busy(false);
          if (!state.saveError) {
            ws.notice("The draft could not be saved, so it was not submitted. Try again.", "error");
          }
          return null;
        }
        return HC.api.submit(config.urls.submit, state.etag,
                             { outcome: outcome, cannot_assess_reason: reason || "" });
      }).then(function (result) {
        if (!result) {
          return;
        }
        busy(false);
        if (result.ok) {
          state.etag = result.etag;
          setReadOnly(true, result.data);
          ws.setSaveState("saved", "Submitted");
          ws.notice("Submitted. Thank you! Go on with the next region when you are ready.", "ok");
          $("ws-next").focus();
        } else if (result.status === 412) {
          ws.reloadAfterConflict();
        } else {
          ws.notice("Not submitted: " + HC.api.errorText(result), "error");
        }
      }, function () {
        busy(false);
        ws.notice("The server could not be reached; nothing was submitted.", "error");
      });
    }

    function busy(on) {
      document.querySelectorAll("[data-finish]").forEach(function (b) {
        b.disabled = on || state.readOnly;
      });
    }

    $("ws-submit").addEventListener("click", function () { finish("shapes"); });
    $("ws-nothing").addEventListener("click", function () { finish("nothing"); });

    var cannot = $("ws-cannot-dialog");
    $("ws-cannot").addEventListener("click", function () {
      if (!state.readOnly) {
        $("ws-cannot-reason").value = "";
        cannot.showModal();
      }
    });
    document.querySelectorAll("[data-reason]").forEach(function (button) {
      button.addEventListener("click", function () {
        $("ws-cannot-reason").value = button.dataset.reason;
        $("ws-cannot-reason").focus();
      });
    });
    // The dialog's form closes it; a reason is required, so an empty one keeps it open.
    $("ws-cannot-form").addEventListener("submit", function (event) {
      if (event.submitter && event.submitter.value === "cancel") {
        return;
      }
      var reason = $("ws-cannot-reason").value.trim();
      if (!reason) {
        event.preventDefault();
        $("ws-cannot-reason").focus();
        return;
      }
      finish("cannot_assess", reason);
    });

    ws.setReadOnly = setReadOnly;
    ws.finish = finish;
  };
})(window.HC = window.HC || {});
