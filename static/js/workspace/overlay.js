// SVG drawing over OpenSeadragon: the region frame, the shapes, the ring being drawn and the
// vertex handles. Shapes live in a group transformed from level-0 image pixels to screen
// pixels, so a viewport change only rewrites one transform; handles are placed in screen
// pixels so they keep their size at any zoom.
(function (HC) {
  "use strict";

  var NS = "http://www.w3.org/2000/svg";
  var FILL = [0.35, 0, 0]; // by opacity mode: filled, outline only, hidden

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (parent) {
      parent.appendChild(node);
    }
    return node;
  }

  function ringPath(ring, close) {
    if (!ring.length) {
      return "";
    }
    var d = "M" + ring[0][0] + " " + ring[0][1];
    for (var i = 1; i < ring.length; i++) {
      d += "L" + ring[i][0] + " " + ring[i][1];
    }
    return close ? d + "Z" : d;
  }

  function shapePath(shape) {
    return shape.polygons.map(function (rings) {
      return rings.map(function (ring) { return ringPath(ring, true); }).join("");
    }).join("");
  }

  // options: region {x, y, width, height}, slide {width, height}, colorOf(classId),
  // onHandleDown(handle, pointerEvent).
  function Overlay(viewer, options) {
    this.viewer = viewer;
    this.options = options;
    this.shapes = [];
    this.selected = null;
    this.selectedVertex = null;
    this.drawing = null;
    this.showHandles = false;
    this.opacityMode = 0;
    this.scale = 1;
    this.origin = { x: 0, y: 0 };

    var svg = el("svg", { class: "ws-overlay", "data-testid": "overlay" });
    this.svg = svg;
    this.image = el("g", { class: "ws-image-layer" }, svg);
    this.frame = el("g", { class: "ws-frame" }, this.image);
    this.shapeLayer = el("g", { class: "ws-shapes" }, this.image);
    this.drawLayer = el("g", { class: "ws-drawing" }, this.image);
    this.handleLayer = el("g", { class: "ws-handles" }, svg);
    this.buildFrame();
    viewer.canvas.appendChild(svg);

    var self = this;
    var update = function () { self.place(); };
    viewer.addHandler("update-viewport", update);
    viewer.addHandler("resize", update);
    viewer.addHandler("open", update);
  }

  // A dimmed surround with the region cut out, and a two-tone outline that reads on both
  // pale stroma and dark nuclei.
  Overlay.prototype.buildFrame = function () {
    var r = this.options.region, s = this.options.slide;
    var padX = Math.max(s.width, r.width * 4), padY = Math.max(s.height, r.height * 4);
    var outer = ringPath([[-padX, -padY], [s.width + padX, -padY], [s.width + padX, s.height + padY],
                          [-padX, s.height + padY]], true);
    var inner = ringPath([[r.x, r.y], [r.x + r.width, r.y], [r.x + r.width, r.y + r.height],
                          [r.x, r.y + r.height]], true);
    el("path", { d: outer + inner, class: "ws-surround", "fill-rule": "evenodd" }, this.frame);
    var box = { x: r.x, y: r.y, width: r.width, height: r.height };
    el("rect", Object.assign({ class: "ws-region-halo" }, box), this.frame);
    el("rect", Object.assign({ class: "ws-region-line", "data-testid": "region-outline" }, box),
       this.frame);
  };

  // Image -> element transform from OpenSeadragon (no rotation: one scale, one offset).
  Overlay.prototype.place = function () {
    var viewport = this.viewer.viewport;
    if (!viewport || !this.viewer.world.getItemCount()) {
      return;
    }
    var o = viewport.imageToViewerElementCoordinates(new OpenSeadragon.Point(0, 0));
    var u = viewport.imageToViewerElementCoordinates(new OpenSeadragon.Point(1000, 0));
    this.origin = { x: o.x, y: o.y };
    this.scale = (u.x - o.x) / 1000;
    this.image.setAttribute("transform",
      "matrix(" + this.scale + " 0 0 " + this.scale + " " + o.x + " " + o.y + ")");
    this.renderHandles();
  };

  Overlay.prototype.toScreen = function (p) {
    return [this.origin.x + p[0] * this.scale, this.origin.y + p[1] * this.scale];
  };

  Overlay.prototype.setOpacityMode = function (mode) {
    this.opacityMode = mode;
    this.svg.classList.toggle("ws-hidden-shapes", mode === 2);
    this.renderShapes();
  };

  Overlay.prototype.setShapes = function (shapes) {
    this.shapes = shapes;
    this.renderShapes();
    this.renderHandles();
  };

  Overlay.prototype.setSelection = function (uid, vertex) {
    this.selected = uid;
    this.selectedVertex = vertex || null;
    this.renderShapes();
    this.renderHandles();
  };

  Overlay.prototype.setShowHandles = function (show) {
    this.showHandles = show;
    this.renderHandles();
  };

  Overlay.prototype.renderShapes = function () {
    var layer = this.shapeLayer, self = this;
    while (layer.firstChild) {
      layer.removeChild(layer.firstChild);
    }
    var fill = FILL[this.opacityMode];
    this.shapes.forEach(function (shape, index) {
      var color = self.options.colorOf(shape.classId);
      var d = shapePath(shape);
      var selected = shape.uid === self.selected;
      el("path", {
        d: d, class: "ws-shape" + (selected ? " selected" : ""), fill: color,
        "fill-opacity": selected ? Math.max(fill, 0.15) : fill, stroke: color,
        "fill-rule": "evenodd", "data-uid": shape.uid, "data-index": index,
      }, layer);
      if (selected) {
        el("path", { d: d, class: "ws-shape-selected", "fill-rule": "evenodd" }, layer);
      }
    });
  };

  // The ring being drawn: its segments, a rubber band to the pointer, and the closing hint.
  Overlay.prototype.setDrawing = function (drawing) {
    this.drawing = drawing;
    var layer = this.drawLayer;
    while (layer.firstChild) {
      layer.removeChild(layer.firstChild);
    }
    if (drawing && drawing.points.length) {
      var color = drawing.hole ? "#ffffff" : this.options.colorOf(drawing.classId);
      var cls = "ws-draft" + (drawing.hole ? " hole" : "");
      el("path", { d: ringPath(drawing.points, false), class: cls, stroke: color }, layer);
      if (drawing.cursor) {
        var last = drawing.points[drawing.points.length - 1];
        el("path", { d: ringPath([last, drawing.cursor], false), class: cls + " rubber",
                     stroke: color }, layer);
      }
    }
    this.renderHandles();
  };

  Overlay.prototype.renderHandles = function () {
    var layer = this.handleLayer, self = this;
    while (layer.firstChild) {
      layer.removeChild(layer.firstChild);
    }
    var drawing = this.drawing;
    if (drawing && drawing.points.length) {
      drawing.points.forEach(function (p, i) {
        var s = self.toScreen(p);
        var first = i === 0;
        var closable = first && drawing.points.length >= 3;
        var node = el("circle", {
          cx: s[0], cy: s[1], r: closable ? 7 : 3,
          class: "ws-handle draft" + (closable ? " closer" : ""),
          "data-testid": first ? "draft-first-vertex" : "draft-vertex",
        }, layer);
        if (closable) {
          self.bindHandle(node, { kind: "close" });
        }
      });
    }
    if (!this.showHandles || this.selected === null) {
      return;
    }
    var shape = null;
    for (var i = 0; i < this.shapes.length; i++) {
      if (this.shapes[i].uid === this.selected) {
        shape = this.shapes[i];
      }
    }
    if (!shape) {
      return;
    }
    var sv = this.selectedVertex;
    shape.polygons.forEach(function (rings, pi) {
      rings.forEach(function (ring, ri) {
        ring.forEach(function (p, vi) {
          var s = self.toScreen(p);
          var isSelected = sv && sv.polygon === pi && sv.ring === ri && sv.index === vi;
          var node = el("circle", {
            cx: s[0], cy: s[1], r: isSelected ? 6 : 4.5,
            class: "ws-handle vertex" + (isSelected ? " selected" : "") + (ri > 0 ? " hole" : ""),
            "data-vertex": pi + "/" + ri + "/" + vi,
          }, layer);
          self.bindHandle(node, { kind: "vertex", uid: shape.uid,
                                  at: { polygon: pi, ring: ri, index: vi } });
        });
      });
    });
  };

  // Handles take the pointer before OpenSeadragon's canvas tracker sees it (no pan, no click).
  Overlay.prototype.bindHandle = function (node, handle) {
    var self = this;
    node.addEventListener("pointerdown", function (event) {
      event.stopPropagation();
      event.preventDefault();
      self.options.onHandleDown(handle, event, node);
    });
    ["pointerup", "click", "dblclick"].forEach(function (name) {
      node.addEventListener(name, function (event) { event.stopPropagation(); });
    });
  };

  HC.Overlay = Overlay;
})(window.HC = window.HC || {});
