// Tools and selection: the active tool and class, the selected shape, delete, undo/redo, opacity.
(function (HC) {
  "use strict";

  HC.workspace = HC.workspace || {};

  var OPACITY_LABELS = ["Fill", "Outline", "Hidden"];

  // Adds select, setTool, setClass, deleteSelection, undo, redo and cycleOpacity to ws.
  HC.workspace.tools = function (ws) {
    var state = ws.state, editor = ws.editor, overlay = ws.overlay, $ = ws.$;

    function select(uid, vertex) {
      state.selected = uid;
      state.selectedVertex = vertex || null;
      overlay.setSelection(uid, state.selectedVertex);
      ws.renderShapeList();
      ws.refreshControls();
    }

    function setTool(tool) {
      if (state.readOnly && tool !== "move") {
        return;
      }
      if (state.drawing && tool !== state.tool) {
        ws.cancelDrawing();
      }
      state.tool = tool;
      document.querySelectorAll("[data-tool]").forEach(function (button) {
        button.setAttribute("aria-pressed", button.dataset.tool === tool ? "true" : "false");
      });
      $("ws-viewer").dataset.tool = tool;
      overlay.setShowHandles(tool === "move" && !state.readOnly);
      var hint = $("ws-hint").dataset;
      $("ws-hint").textContent = (state.readOnly ? hint.readonly : hint[tool]) || "";
    }

    function setClass(classId) {
      state.classId = classId;
      document.querySelectorAll("[data-class-id]").forEach(function (button) {
        button.setAttribute("aria-pressed",
                            Number(button.dataset.classId) === classId ? "true" : "false");
      });
      if (state.drawing && !state.drawing.hole) {
        state.drawing.classId = classId;
        overlay.setDrawing(state.drawing);
      }
      // In Move mode the class applies to the selected shape; while drawing it only picks the
      // class of the next outline (the shape just closed stays as it was drawn).
      if (state.tool === "move" && state.selected !== null && !state.readOnly) {
        editor.setClass(state.selected, classId);
      }
    }

    function deleteSelection() {
      if (state.readOnly || state.selected === null) {
        return;
      }
      if (state.selectedVertex) {
        var result = editor.deleteVertex(state.selected, state.selectedVertex);
        if (!result.ok) {
          ws.notice(result.reason, "warn");
        }
        select(state.selected, null);
        return;
      }
      editor.deleteShape(state.selected);
      select(null);
    }

    // While drawing, undo and redo step through the vertices of the open outline.
    function undo() {
      if (state.drawing) {
        var pts = state.drawing.points;
        if (pts.length) {
          state.popped.push(pts.pop());
        }
        if (!pts.length) {
          ws.cancelDrawing();
        } else {
          ws.showDrawing();
        }
        return;
      }
      editor.undo();
    }

    function redo() {
      if (state.drawing) {
        if (state.popped.length) {
          state.drawing.points.push(state.popped.pop());
          ws.showDrawing();
        }
        return;
      }
      editor.redo();
    }

    function cycleOpacity() {
      state.opacityMode = (state.opacityMode + 1) % 3;
      overlay.setOpacityMode(state.opacityMode);
      $("ws-opacity-label").textContent = OPACITY_LABELS[state.opacityMode];
      $("ws-opacity").setAttribute("aria-pressed", state.opacityMode ? "true" : "false");
    }

    ws.select = select;
    ws.setTool = setTool;
    ws.setClass = setClass;
    ws.deleteSelection = deleteSelection;
    ws.undo = undo;
    ws.redo = redo;
    ws.cycleOpacity = cycleOpacity;
  };
})(window.HC = window.HC || {});
