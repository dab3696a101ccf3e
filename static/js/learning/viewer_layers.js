// Model map layers on the slide viewer: the prediction and uncertainty images of a model
// version, laid over the slide as simple images (one PNG each, the slide's size in viewport
// units). The list comes from the server, cut to what the user may see; no list, no control.
(function () {
  "use strict";

  var viewer = window.histocrowdViewer;
  var box = document.getElementById("model-layers");
  if (!viewer || !box) {
    return;
  }
  var params = new URLSearchParams(window.location.search);
  var OPACITY = { prediction: 0.6, uncertainty: 0.65 };
  var layers = [], current = null, items = {}, opacity = 1;

  fetch(box.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (response) { return response.ok ? response.json() : { layers: [] }; })
    .then(function (data) {
      layers = data.layers || [];
      if (layers.length) {
        build();
      }
    })
    .catch(function () { /* no layers */ });

  function el(name, attrs, text) {
    var node = document.createElement(name);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text) {
      node.textContent = text;
    }
    return node;
  }

  function build() {
    viewer.viewport.silenceMultiImageWarnings = true;
    var wanted = Number(params.get("model"));
    current = layers.filter(function (l) { return l.version === wanted; })[0] || layers[0];
    if (layers.length > 1) {
      var select = el("select", { "aria-label": "Model version", "data-testid": "layer-version" });
      layers.forEach(function (l) {
        var option = el("option", { value: String(l.version) },
                        l.project + " · v" + l.number +
                        (l.meanDice !== null && l.meanDice !== undefined ?
                         " (Dice " + l.meanDice.toFixed(2) + ")" : ""));
        option.selected = l === current;
        select.appendChild(option);
      });
      select.addEventListener("change", function () {
        var next = layers.filter(function (l) { return String(l.version) === select.value; })[0];
        switchTo(next);
      });
      box.appendChild(select);
    } else {
      var link = el("a", { href: current.page, title: "Model version page" }, "Model v" + current.number);
      box.appendChild(link);
    }
    ["prediction", "uncertainty"].forEach(function (kind) {
      var label = el("label");
      var input = el("input", { type: "checkbox", "data-layer": kind,
                                "data-testid": "layer-" + kind });
      input.addEventListener("change", function () { show(kind, input.checked); });
      label.appendChild(input);
      label.appendChild(document.createTextNode(kind === "prediction" ? "Prediction" : "Uncertainty"));
      box.appendChild(label);
    });
    var range = el("input", { type: "range", min: "0", max: "100", value: "100",
                              "aria-label": "Layer opacity", title: "Layer opacity" });
    range.addEventListener("input", function () {
      opacity = Number(range.value) / 100;
      Object.keys(items).forEach(function (kind) { apply(kind); });
    });
    box.appendChild(range);
    box.appendChild(el("span", { class: "layer-legend", id: "layer-legend" }));
    box.hidden = false;
    var first = params.get("layer");
    if (first === "prediction" || first === "uncertainty") {
      var input = box.querySelector("[data-layer=" + first + "]");
      input.checked = true;
      show(first, true);
    }
  }

  function apply(kind) {
    var entry = items[kind];
    if (entry && entry.item) {
      entry.item.setOpacity(entry.on ? OPACITY[kind] * opacity : 0);
    }
  }

  function legend() {
    var node = document.getElementById("layer-legend");
    node.textContent = "";
    if (items.prediction && items.prediction.on) {
      current.classes.forEach(function (c) {
        var swatch = el("span", { class: "swatch" });
        swatch.style.background = c.color || "#9aa3b8";
        var item = el("span");
        item.appendChild(swatch);
        item.appendChild(document.createTextNode(c.name));
        node.appendChild(item);
      });
    }
    if (items.uncertainty && items.uncertainty.on) {
      var ramp = el("span");
      ramp.appendChild(document.createTextNode("certain "));
      ramp.appendChild(el("span", { class: "ramp" }));
      ramp.appendChild(document.createTextNode(" uncertain"));
      node.appendChild(ramp);
    }
  }

  function show(kind, on) {
    var entry = items[kind];
    if (entry) {
      entry.on = on;
      apply(kind);
      legend();
      return;
    }
    entry = items[kind] = { on: on, item: null };
    legend();
    // The slide is item 0 and 1 wide: the map covers exactly that width at x = 0.
    viewer.addTiledImage({
      tileSource: { type: "image", url: current[kind] },
      x: 0,
      y: 0,
      width: 1,
      opacity: 0,
      success: function (event) {
        entry.item = event.item;
        apply(kind);
        document.body.dataset["layer" + kind.charAt(0).toUpperCase() + kind.slice(1)] = "yes";
      },
    });
  }

  function switchTo(next) {
    Object.keys(items).forEach(function (kind) {
      if (items[kind].item) {
        viewer.world.removeItem(items[kind].item);
      }
    });
    var was = {};
    Object.keys(items).forEach(function (kind) { was[kind] = items[kind].on; });
    items = {};
    current = next;
    Object.keys(was).forEach(function (kind) {
      if (was[kind]) {
        show(kind, true);
      }
    });
    legend();
  }
})();
