// The project learning page polls its progress endpoint and updates the figures, the step bar,
// the progress bar and the learning curve in place; a new round or step reloads the page (its
// panel and buttons differ per step).
(function () {
  "use strict";

  var card = document.querySelector("[data-testid=current-round]");
  if (!card) {
    return;
  }
  var url = card.dataset.pollUrl;
  var every = Math.max(1, Number(card.dataset.pollSeconds) || 3) * 1000;
  var roundId = Number(card.dataset.round);
  var state = card.dataset.state;
  var failed = card.dataset.failed === "yes";

  function format(node, value) {
    if (value === null || value === undefined || value === "") {
      return "—";
    }
    var digits = node.dataset.digits;
    return digits !== undefined && typeof value === "number" ? value.toFixed(Number(digits))
                                                              : String(value);
  }

  function setField(name, value) {
    card.querySelectorAll("[data-field='" + name + "']").forEach(function (node) {
      node.textContent = format(node, value);
    });
  }

  function apply(data) {
    var round = data.round;
    if (!round || round.id !== roundId || round.state !== state ||
        Boolean(round.failed_reason) !== failed) {
      window.location.reload();
      return false;
    }
    Object.keys(round.figures || {}).forEach(function (key) { setField(key, round.figures[key]); });
    setField("failed_reason", round.failed_reason);
    var bar = card.querySelector("span[data-field=percent]");
    if (bar) {
      var percent = round.percent || 0;
      bar.style.width = percent + "%";
      bar.parentNode.setAttribute("aria-valuenow", String(percent));
    }
    (round.steps || []).forEach(function (step) {
      var node = card.querySelector("[data-step='" + step.key + "']");
      if (node && node.dataset.status !== step.status) {
        node.dataset.status = step.status;
        node.className = "step " + step.status;
      }
    });
    var curve = card.querySelector("[data-field=curve]");
    if (curve && round.curve) {
      curve.innerHTML = round.curve;
    }
    card.dataset.updated = String(Date.now());
    return true;
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        if (apply(data)) {
          window.setTimeout(poll, every);
        }
      })
      .catch(function () {
        window.setTimeout(poll, every * 3); // offline or restarting: try again, slower
      });
  }

  window.setTimeout(poll, every);
})();
