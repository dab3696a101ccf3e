// What the expert compares, drawn under the editable shapes in the overlay's image group
// (level-0 image pixels): the agreement heat map, each annotator's outlines in their own
// colour, and the machine consensus as a dashed line. Each layer can be toggled.
(function (HC) {
  "use strict";

  var NS = "http://www.w3.org/2000/svg";

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (parent) {
      parent.appendChild(node);
    }
    return node;
  }

  function ringPath(ring) {
    return ring.map(function (p, i) { return (i ? "L" : "M") + p[0] + " " + p[1]; }).join("") + "Z";
  }

  function geometryPath(geometry) {
    return HC.geometry.fromGeometry(geometry).map(function (rings) {
      return rings.map(ringPath).join("");
    }).join("");
  }

  // overlay: an HC.Overlay; config: the page's adjudicate-config. Returns {setVisible,
  // setHeatOpacity}. Sets document.body.dataset.heatmapLoaded once the map image decoded.
  function AdjLayers(overlay, config) {
    var region = config.region;
    var root = el("g", { class: "adj-layers-root" });
    overlay.image.insertBefore(root, overlay.shapeLayer);
    var groups = {};

    var heat = el("image", {
      x: region.x, y: region.y, width: region.width, height: region.height,
      preserveAspectRatio: "none", class: "adj-heatmap", opacity: 0.45,
      "data-testid": "heatmap",
    }, root);
    groups.heatmap = heat;
    if (config.urls.agreementMap) {
      // Decode first, so the test (and the expert) know the map is really there.
      var probe = new Image();
      probe.onload = function () {
        heat.setAttribute("href", config.urls.agreementMap);
        heat.dataset.naturalWidth = probe.naturalWidth;
        heat.dataset.naturalHeight = probe.naturalHeight;
        document.body.dataset.heatmapLoaded = "yes";
      };
      probe.onerror = function () { document.body.dataset.heatmapLoaded = "error"; };
      probe.src = config.urls.agreementMap;
    } else {
      heat.style.display = "none";
    }

    config.annotators.forEach(function (layer) {
      var g = el("g", {
        class: "adj-annotator", "data-testid": "annotator-outline", "data-layer": layer.key,
        stroke: layer.color,
      }, root);
      layer.shapes.forEach(function (shape) {
        el("path", { d: geometryPath(shape.geometry), class: "adj-outline",
                     "fill-rule": "evenodd", stroke: layer.color }, g);
      });
      groups[layer.key] = g;
    });

    var consensus = el("g", { class: "adj-consensus", "data-testid": "consensus-outline" }, root);
    (config.run ? config.run.polygons : []).forEach(function (polygon) {
      el("path", { d: geometryPath(polygon.geometry), class: "adj-consensus-line",
                   "fill-rule": "evenodd" }, consensus);
    });
    groups.consensus = consensus;

    return {
      groups: groups,
      setVisible: function (key, visible) {
        if (groups[key]) {
          groups[key].style.display = visible ? "" : "none";
        }
      },
      setHeatOpacity: function (value) { heat.setAttribute("opacity", value); },
    };
  }

  HC.AdjLayers = AdjLayers;
})(window.HC = window.HC || {});
