// Autosave: debounced PUT with If-Match, the Saving/Saved/Conflict indicator, reload on 412.
(function (HC) {
  "use strict";

  HC.workspace = HC.workspace || {};

  var SAVE_DELAY_MS = 1000; // edits within this long go out as one save
  var RETRY_MS = 5000;

  // Adds setSaveState, markChanged, save, reloadAfterConflict and applyWork to ws.
  HC.workspace.autosave = function (ws) {
    var state = ws.state, editor = ws.editor, config = ws.config, $ = ws.$;

    function setSaveState(name, text) {
      var node = $("ws-save");
      node.dataset.state = name;
      node.textContent = text;
    }

    function markChanged() {
      state.pending = true;
      state.saveError = "";
      setSaveState("dirty", "Unsaved changes");
      clearTimeout(state.saveTimer);
      state.saveTimer = setTimeout(save, SAVE_DELAY_MS);
    }

    function localVersion() {
      return editor.snapshot() + "|" + state.regionLabel;
    }

    // Send the draft (another tab may have saved since: If-Match turns that into a 412, not a
    // silent overwrite); resolves to true when the server has everything the page has.
    function save() {
      clearTimeout(state.saveTimer);
      if (state.inflight) {
        return state.inflight.then(function () { return state.pending ? save() : true; });
      }
      if (!state.pending) {
        return Promise.resolve(!state.saveError);
      }
      var sent = localVersion();
      var body = {
        shapes: editor.payload(),
        region_label: state.regionLabel,
        time_spent_seconds: Math.round(ws.secondsSpent()),
        shown: config.shown,
      };
      setSaveState("saving", "Saving…");
      state.inflight = HC.api.putWork(config.urls.work, state.etag, body).then(function (result) {
        state.inflight = null;
        if (result.ok) {
          state.etag = result.etag;
          var unchanged = localVersion() === sent;
          if (unchanged) {
            state.pending = false;
            var repairs = result.data.repairs || [];
            if (repairs.length) {
              editor.adopt(result.data.shapes); // what the server stored: clipped / repaired
              ws.notice(repairNotice(repairs), "info");
            }
            setSaveState("saved", "Saved");
          } else {
            state.saveTimer = setTimeout(save, SAVE_DELAY_MS);
          }
          return !state.pending;
        }
        if (result.status === 412) {
          return reloadAfterConflict();
        }
        if (result.status >= 400 && result.status < 500) {
          state.saveError = HC.api.errorText(result);
          setSaveState("error", "Not saved");
          ws.notice("Not saved: " + state.saveError + " Undo or fix the shape.", "error");
          return false;
        }
        setSaveState("error", "Not saved, retrying…");
        state.saveTimer = setTimeout(save, RETRY_MS);
        return false;
      }, function () {
        state.inflight = null;
        setSaveState("error", "Offline, retrying…");
        state.saveTimer = setTimeout(save, RETRY_MS);
        return false;
      });
      return state.inflight;
    }

    function repairNotice(repairs) {
      var clipped = repairs.filter(function (r) { return r.clipped; }).length;
      var fixed = repairs.length - clipped;
      var parts = [];
      if (clipped) {
        parts.push(clipped + (clipped === 1 ? " shape was" : " shapes were") +
                   " clipped to the region");
      }
      if (fixed) {
        parts.push(fixed + (fixed === 1 ? " shape was" : " shapes were") +
                   " repaired (self-crossing)");
      }
      return parts.join("; ") + ".";
    }

    function reloadAfterConflict() {
      setSaveState("conflict", "Conflict");
      return HC.api.getWork(config.urls.work).then(function (result) {
        if (!result.ok) {
          ws.notice("Could not reload the draft: " + HC.api.errorText(result), "error");
          return false;
        }
        applyWork(result);
        setSaveState("conflict", "Conflict: reloaded");
        ws.notice("This draft was saved elsewhere (another tab?). The server's copy is shown " +
                  "now; redo your last change if it is missing.", "warn");
        return false;
      });
    }

    // Show the server's copy of the draft (first load, or after a conflict).
    function applyWork(result) {
      var work = result.data;
      state.etag = result.etag;
      state.pending = false;
      state.saveError = "";
      state.regionLabel = work.region_label;
      state.baseSeconds = work.time_spent_seconds || 0;
      state.activeSeconds = 0;
      if (state.drawing) {
        ws.cancelDrawing();
      }
      ws.select(null);
      editor.load(work.shapes);
      if ($("ws-region-label")) {
        $("ws-region-label").value = work.region_label === null ? "" : String(work.region_label);
      }
      ws.setReadOnly(work.status === "submitted", work);
    }

    // Leaving with unsaved edits: start a save and ask the browser to confirm.
    window.addEventListener("beforeunload", function (event) {
      if (state.pending && !state.readOnly) {
        save();
        event.preventDefault();
        event.returnValue = "";
      }
    });

    ws.setSaveState = setSaveState;
    ws.markChanged = markChanged;
    ws.save = save;
    ws.reloadAfterConflict = reloadAfterConflict;
    ws.applyWork = applyWork;
  };
})(window.HC = window.HC || {});
