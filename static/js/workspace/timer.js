// Time spent on the region: counts seconds only while the page is visible and in use.
(function (HC) {
  "use strict";

  HC.workspace = HC.workspace || {};

  var IDLE_S = 120; // no input for this long: the clock stops

  // Adds secondsSpent and touch to ws, and starts the clock.
  HC.workspace.timer = function (ws) {
    var state = ws.state, $ = ws.$;

    function secondsSpent() {
      return state.baseSeconds + state.activeSeconds;
    }

    function touch() {
      state.lastInput = Date.now();
    }

    ["pointerdown", "pointermove", "keydown", "wheel"].forEach(function (name) {
      window.addEventListener(name, touch, { passive: true, capture: true });
    });

    setInterval(function () {
      var idle = (Date.now() - state.lastInput) / 1000 > IDLE_S;
      if (!state.readOnly && document.visibilityState === "visible" && !idle) {
        state.activeSeconds += 1;
      }
      var total = Math.floor(secondsSpent());
      var m = Math.floor(total / 60), s = total % 60;
      $("ws-timer").textContent = m + ":" + (s < 10 ? "0" : "") + s;
    }, 1000);

    ws.secondsSpent = secondsSpent;
    ws.touch = touch;
  };
})(window.HC = window.HC || {});
