// Drawing on the slide: polygon clicks, freehand drags, hole rings, and vertex drag / Alt-delete.
(function (HC) {
  "use strict";

  HC.workspace = HC.workspace || {};

  var CLOSE_PX = 9;      // a click this near the first point closes the ring
  var FREEHAND_PX = 3;   // freehand keeps a point every this many screen pixels

  // Adds drawingTool, cancelDrawing, closeDrawing, showDrawing and onHandleDown to ws.
  HC.workspace.drawing = function (ws) {
    var state = ws.state, editor = ws.editor, viewer = ws.viewer, overlay = ws.overlay;

    function drawingTool() {
      return state.tool === "polygon" || state.tool === "freehand" || state.tool === "hole";
    }

    function startDrawing() {
      state.drawing = { points: [], classId: state.classId, hole: state.tool === "hole",
                        cursor: null, freehand: false };
      state.popped = [];
    }

    function addPoint(point, minPx) {
      var pts = state.drawing.points;
      if (pts.length && ws.screenDistance(pts[pts.length - 1], point) < minPx) {
        return false; // a double-click's second click, or a jittery freehand sample
      }
      pts.push(point);
      state.popped = [];
      return true;
    }

    function cancelDrawing() {
      state.drawing = null;
      overlay.setDrawing(null);
      ws.refreshControls();
    }

    function closeDrawing() {
      var drawing = state.drawing;
      if (!drawing) {
        return;
      }
      state.drawing = null;
      overlay.setDrawing(null);
      if (drawing.points.length < 3) {
        ws.notice("A shape needs at least three points.", "warn");
        ws.refreshControls();
        return;
      }
      if (drawing.hole) {
        var result = editor.addHole(drawing.points, state.selected);
        if (!result.ok) {
          ws.notice(result.reason, "warn");
        } else {
          ws.select(result.uid);
          ws.notice("Hole cut.", "ok");
        }
      } else {
        var uid = editor.addShape(drawing.classId, drawing.points);
        if (uid) {
          ws.select(uid);
        } else {
          ws.notice("That outline has no area; try again.", "warn");
        }
      }
      ws.refreshControls();
    }

    function showDrawing() {
      overlay.setDrawing(state.drawing);
      ws.refreshControls();
    }

    function canDraw() {
      if (state.classId === null) {
        ws.notice("This project has no class to draw.", "warn");
        return false;
      }
      return true;
    }

    viewer.addHandler("canvas-press", function (event) {
      if (state.readOnly || !drawingTool()) {
        return;
      }
      var freehand = state.tool === "freehand" || event.originalEvent.shiftKey;
      if (!freehand) {
        return;
      }
      if (!state.drawing) {
        if (!canDraw()) {
          return;
        }
        startDrawing();
      }
      state.drawing.freehand = true;
      addPoint(ws.toImage(event.position), 0);
      showDrawing();
    });

    viewer.addHandler("canvas-drag", function (event) {
      if (state.drawing && state.drawing.freehand) {
        event.preventDefaultAction = true;
        if (addPoint(ws.toImage(event.position), FREEHAND_PX)) {
          state.drawing.cursor = null;
          showDrawing();
        }
      }
    });

    viewer.addHandler("canvas-drag-end", function (event) {
      if (state.drawing && state.drawing.freehand) {
        event.preventDefaultAction = true;
      }
    });

    viewer.addHandler("canvas-release", function () {
      if (!state.drawing || !state.drawing.freehand) {
        return;
      }
      state.drawing.freehand = false;
      state.drawing.tracedAt = Date.now();
      if (state.tool === "freehand") {
        closeDrawing(); // a freehand outline closes when the button is let go
      }
    });

    viewer.addHandler("canvas-click", function (event) {
      event.preventDefaultAction = true;
      if (state.drawing && Date.now() - (state.drawing.tracedAt || 0) < 100) {
        return; // the release that ends a Shift-drag is not a vertex
      }
      if (!event.quick || state.readOnly) {
        return;
      }
      var point = ws.toImage(event.position);
      if (state.tool === "move") {
        var shape = editor.shapeAt(point);
        ws.select(shape ? shape.uid : null);
        return;
      }
      if (state.tool !== "polygon" && state.tool !== "hole") {
        return;
      }
      if (!state.drawing) {
        if (!canDraw()) {
          return;
        }
        startDrawing();
      }
      var pts = state.drawing.points;
      if (pts.length >= 3 && ws.screenDistance(pts[0], point) <= CLOSE_PX) {
        closeDrawing();
        return;
      }
      addPoint(point, 2);
      showDrawing();
    });

    viewer.addHandler("canvas-double-click", function (event) {
      event.preventDefaultAction = true;
      if (state.drawing && state.drawing.points.length >= 3) {
        closeDrawing();
      }
    });

    viewer.canvas.addEventListener("pointermove", function (event) {
      if (state.drawing && !state.drawing.freehand && state.drawing.points.length) {
        state.drawing.cursor = ws.toImage(ws.elementPosition(event));
        overlay.setDrawing(state.drawing);
      }
    });

    // Handles: close the ring, or select / drag / Alt-delete a vertex of the selected shape.
    function onHandleDown(handle, event) {
      ws.touch();
      if (handle.kind === "close") {
        closeDrawing();
        return;
      }
      if (state.readOnly) {
        return;
      }
      if (event.altKey) {
        var result = editor.deleteVertex(handle.uid, handle.at);
        if (!result.ok) {
          ws.notice(result.reason, "warn");
        }
        state.selectedVertex = null;
        overlay.setSelection(state.selected, null);
        return;
      }
      state.selectedVertex = handle.at;
      overlay.setSelection(state.selected, handle.at);
      editor.beginTransient();
      var move = function (e) {
        editor.moveVertex(handle.uid, handle.at, ws.toImage(ws.elementPosition(e)));
      };
      // Capture phase: the handle under the pointer is redrawn as it moves and stops the
      // bubbling of its own pointerup (so that OpenSeadragon never sees half a gesture).
      var up = function () {
        window.removeEventListener("pointermove", move, true);
        window.removeEventListener("pointerup", up, true);
        editor.endTransient();
      };
      window.addEventListener("pointermove", move, true);
      window.addEventListener("pointerup", up, true);
    }

    ws.cancelDrawing = cancelDrawing;
    ws.closeDrawing = closeDrawing;
    ws.showDrawing = showDrawing;
    ws.onHandleDown = onHandleDown;
  };
})(window.HC = window.HC || {});
