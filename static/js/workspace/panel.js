// The side panel's live parts: the shape list, the enabled state of the edit buttons, notices.
(function (HC) {
  "use strict";

  HC.workspace = HC.workspace || {};

  var NOTICE_MS = 8000; // errors stay until replaced; other notices fade after this

  // Adds renderShapeList, refreshControls and notice to ws.
  HC.workspace.panel = function (ws) {
    var state = ws.state, editor = ws.editor, $ = ws.$;

    function formatArea(px2) {
      var mpp = ws.config.slide.mpp;
      if (!mpp) {
        return Math.round(px2).toLocaleString() + " px²";
      }
      var um2 = px2 * mpp * mpp;
      return um2 >= 1e5 ? (um2 / 1e6).toFixed(3) + " mm²"
                        : Math.round(um2).toLocaleString() + " µm²";
    }

    function renderShapeList() {
      var list = $("ws-shapes");
      list.textContent = "";
      editor.shapes.forEach(function (shape, index) {
        var c = ws.classById[shape.classId] || { name: "?", color: "#999" };
        var li = document.createElement("li");
        li.className = "shape-row" + (shape.uid === state.selected ? " selected" : "");
        li.dataset.uid = shape.uid;
        var pick = document.createElement("button");
        pick.type = "button";
        pick.className = "shape-pick";
        var holes = HC.geometry.holeCount(shape);
        pick.innerHTML = '<span class="swatch"></span><span class="shape-name"></span>' +
          '<span class="shape-meta"></span>';
        pick.querySelector(".swatch").style.background = c.color;
        pick.querySelector(".shape-name").textContent = (index + 1) + ". " + c.name;
        pick.querySelector(".shape-meta").textContent = formatArea(HC.geometry.shapeArea(shape)) +
          " · " + HC.geometry.vertexCount(shape) + " pts" +
          (holes ? " · " + holes + (holes === 1 ? " hole" : " holes") : "");
        pick.addEventListener("click", function () {
          ws.select(shape.uid);
          if (state.tool !== "move") {
            ws.setTool("move");
          }
        });
        li.appendChild(pick);
        if (!state.readOnly) {
          var del = document.createElement("button");
          del.type = "button";
          del.className = "shape-delete";
          del.setAttribute("aria-label", "Delete shape " + (index + 1));
          del.title = "Delete shape";
          del.textContent = "×";
          del.addEventListener("click", function () {
            editor.deleteShape(shape.uid);
          });
          li.appendChild(del);
        }
        list.appendChild(li);
      });
      var count = editor.shapes.length;
      $("ws-shape-count").textContent = count ? "(" + count + ")" : "";
      $("ws-shapes-empty").hidden = editor.shapes.length > 0;
    }

    function refreshControls() {
      $("ws-undo").disabled = state.readOnly ||
        !(state.drawing ? state.drawing.points.length : editor.canUndo());
      $("ws-redo").disabled = state.readOnly ||
        !(state.drawing ? state.popped.length : editor.canRedo());
      $("ws-delete").disabled = state.readOnly || state.selected === null;
      document.body.dataset.drawingPoints = state.drawing ? state.drawing.points.length : 0;
    }

    var noticeTimer = null;
    function notice(text, kind) {
      var node = $("ws-notice");
      node.textContent = text;
      node.dataset.kind = kind || "info";
      node.hidden = false;
      clearTimeout(noticeTimer);
      if (kind !== "error") {
        noticeTimer = setTimeout(function () { node.hidden = true; }, NOTICE_MS);
      }
    }

    ws.renderShapeList = renderShapeList;
    ws.refreshControls = refreshControls;
    ws.notice = notice;
  };
})(window.HC = window.HC || {});
