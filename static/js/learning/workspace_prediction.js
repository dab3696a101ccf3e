// The model's prediction over the region in the annotator workspace, for annotators allowed to
// see it (experts always, students when the project shows predictions). The server answers 404
// to everyone else, and then no control appears. Turning it on records, in the draft's `shown`,
// which model version the annotator saw.
(function () {
  "use strict";

  var ws = window.histocrowdWorkspace;
  var viewer = window.histocrowdViewer;
  if (!ws || !viewer) {
    return;
  }
  var config = ws.config;
  var region = config.region, slide = config.slide;
  var url = "/work/" + config.assignment.id + "/prediction/";
  var OPACITY = 0.55;

  // What the server already recorded (a reload must not drop an earlier "shown").
  HC.api.getWork(config.urls.work).then(function (result) {
    var shown = result.ok && result.data && result.data.shown;
    if (shown && shown.prediction) {
      config.shown = Object.assign({}, config.shown, { prediction: shown.prediction });
    }
  });

  fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (response) { return response.ok ? response.json() : null; })
    .then(function (layer) {
      if (layer) {
        install(layer);
      }
    })
    .catch(function () { /* no overlay */ });

  function install(layer) {
    var group = document.createElement("div");
    group.className = "tool-group";
    var button = document.createElement("button");
    button.type = "button";
    button.id = "ws-prediction";
    button.setAttribute("aria-pressed", "false");
    button.dataset.testid = "prediction-toggle";
    button.title = "The model's prediction over this region (model v" + layer.number + ")";
    button.textContent = "◧ Prediction v" + layer.number;
    group.appendChild(button);
    var legend = document.createElement("span");
    legend.className = "ws-prediction-legend";
    legend.hidden = true;
    layer.classes.forEach(function (c) {
      var item = document.createElement("span");
      var swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = c.color || "#9aa3b8";
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(c.name));
      legend.appendChild(item);
    });
    group.appendChild(legend);
    var hint = document.getElementById("ws-hint");
    hint.parentNode.insertBefore(group, hint);

    var item = null, on = false;
    viewer.viewport.silenceMultiImageWarnings = true;
    button.addEventListener("click", function () {
      on = !on;
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.classList.toggle("active", on);
      legend.hidden = !on;
      if (on) {
        record(layer.modelVersion);
      }
      if (item) {
        item.setOpacity(on ? OPACITY : 0);
        return;
      }
      var scale = 1 / slide.width; // viewport units: the slide is 1 wide
      viewer.addTiledImage({
        tileSource: { type: "image", url: layer.url },
        x: region.x * scale,
        y: region.y * scale,
        width: region.width * scale,
        opacity: on ? OPACITY : 0,
        success: function (event) {
          item = event.item;
          document.body.dataset.predictionShown = "yes";
        },
      });
    });
  }

  function record(versionId) {
    var current = config.shown && config.shown.prediction;
    if (ws.state.readOnly || (current && current.shown && current.model_version === versionId)) {
      return;
    }
    config.shown = Object.assign({}, config.shown, {
      prediction: { model_version: versionId, shown: true },
    });
    ws.markChanged();
  }
})();
