// Keyboard shortcuts: tools, classes, undo/redo, close/cancel an outline, opacity, guidelines.
(function (HC) {
  "use strict";

  HC.workspace = HC.workspace || {};

  var TOOL_KEYS = { v: "move", p: "polygon", f: "freehand", h: "hole" };

  // Class keys: a class's own shortcut, else 1-9 by order among the drawable classes.
  function classKeys(drawable) {
    var keyToClass = {};
    drawable.forEach(function (c) {
      if (c.shortcut) {
        keyToClass[c.shortcut.toLowerCase()] = c.id;
      }
    });
    drawable.forEach(function (c, i) {
      var digit = String(i + 1);
      if (i < 9 && !keyToClass[digit] && !c.shortcut) {
        keyToClass[digit] = c.id;
      }
    });
    return keyToClass;
  }

  // Labels the class buttons with their keys and listens for shortcuts.
  HC.workspace.keys = function (ws) {
    var state = ws.state;
    var keyToClass = classKeys(ws.drawable);
    Object.keys(keyToClass).forEach(function (key) {
      var kbd = document.querySelector("[data-class-id='" + keyToClass[key] + "'] kbd");
      if (kbd) {
        kbd.textContent = key.toUpperCase();
      }
    });

    document.addEventListener("keydown", function (event) {
      var target = event.target;
      // Keys typed into a dialog or a form field are text, not shortcuts.
      if (document.querySelector("dialog[open]") ||
          (target && /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) {
        return;
      }
      var key = event.key.toLowerCase();
      if ((event.ctrlKey || event.metaKey) && (key === "z" || key === "y")) {
        event.preventDefault();
        if (key === "y" || event.shiftKey) {
          ws.redo();
        } else {
          ws.undo();
        }
        return;
      }
      if (event.ctrlKey || event.metaKey || event.altKey) {
        return;
      }
      if (key === "enter" && state.drawing) {
        event.preventDefault();
        ws.closeDrawing();
      } else if (key === "escape") {
        if (state.drawing) {
          ws.cancelDrawing();
        } else {
          ws.select(null);
        }
      } else if (key === "backspace" && state.drawing) {
        event.preventDefault();
        ws.undo();
      } else if (key === "delete" || key === "backspace") {
        event.preventDefault();
        ws.deleteSelection();
      } else if (keyToClass[key] !== undefined) {
        ws.setClass(keyToClass[key]);
      } else if (TOOL_KEYS[key]) {
        ws.setTool(TOOL_KEYS[key]);
      } else if (key === "o") {
        ws.cycleOpacity();
      } else if (key === "r") {
        ws.zoomToRegion(false);
      } else if (key === "g" || key === "?") {
        ws.$("ws-guidelines").showModal();
      }
    });
  };
})(window.HC = window.HC || {});
