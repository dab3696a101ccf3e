// The polygon model of one region's draft, with undo/redo. No DOM, no OpenSeadragon.
//
// Coordinates are level-0 image pixels (x right, y down). A shape is
//   {uid, classId, polygons: [[outer, hole, hole, ...], ...]}
// where each ring is an open list of [x, y] (the closing point is added for GeoJSON only).
(function (HC) {
  "use strict";

  var MAX_HISTORY = 200;

  function round1(v) {
    return Math.round(v * 10) / 10;
  }

  // Shoelace area of an open ring (absolute value, px²).
  function ringArea(ring) {
    var sum = 0;
    for (var i = 0, n = ring.length; i < n; i++) {
      var a = ring[i], b = ring[(i + 1) % n];
      sum += a[0] * b[1] - b[0] * a[1];
    }
    return Math.abs(sum) / 2;
  }

  // Even-odd ray casting; points on the edge count either way (fine for picking).
  function pointInRing(p, ring) {
    var inside = false;
    for (var i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      var xi = ring[i][0], yi = ring[i][1], xj = ring[j][0], yj = ring[j][1];
      if ((yi > p[1]) !== (yj > p[1]) && p[0] < ((xj - xi) * (p[1] - yi)) / (yj - yi) + xi) {
        inside = !inside;
      }
    }
    return inside;
  }

  function pointInPolygon(p, rings) {
    if (!pointInRing(p, rings[0])) {
      return false;
    }
    for (var h = 1; h < rings.length; h++) {
      if (pointInRing(p, rings[h])) {
        return false;
      }
    }
    return true;
  }

  function ringInsideRing(inner, outer) {
    return inner.every(function (p) { return pointInRing(p, outer); });
  }

  function polygonArea(rings) {
    var area = ringArea(rings[0]);
    for (var h = 1; h < rings.length; h++) {
      area -= ringArea(rings[h]);
    }
    return area;
  }

  function shapeArea(shape) {
    return shape.polygons.reduce(function (sum, rings) { return sum + polygonArea(rings); }, 0);
  }

  function vertexCount(shape) {
    return shape.polygons.reduce(function (sum, rings) {
      return sum + rings.reduce(function (s, ring) { return s + ring.length; }, 0);
    }, 0);
  }

  function holeCount(shape) {
    return shape.polygons.reduce(function (sum, rings) { return sum + rings.length - 1; }, 0);
  }

  // GeoJSON ring (closed) -> open ring of rounded points without repeats.
  function openRing(coords) {
    var ring = coords.map(function (p) { return [round1(p[0]), round1(p[1])]; });
    if (ring.length > 1) {
      var first = ring[0], last = ring[ring.length - 1];
      if (first[0] === last[0] && first[1] === last[1]) {
        ring.pop();
      }
    }
    return ring;
  }

  function closedRing(ring) {
    var out = ring.map(function (p) { return [round1(p[0]), round1(p[1])]; });
    out.push(out[0].slice());
    return out;
  }

  function toGeometry(shape) {
    var polygons = shape.polygons.map(function (rings) { return rings.map(closedRing); });
    if (polygons.length === 1) {
      return { type: "Polygon", coordinates: polygons[0] };
    }
    return { type: "MultiPolygon", coordinates: polygons };
  }

  function fromGeometry(geometry) {
    if (!geometry) {
      return [];
    }
    var polygons = geometry.type === "Polygon" ? [geometry.coordinates]
      : geometry.type === "MultiPolygon" ? geometry.coordinates : [];
    return polygons.map(function (rings) { return rings.map(openRing); });
  }

  function Editor() {
    this.shapes = [];
    this.past = [];
    this.future = [];
    this.nextUid = 1;
    this.listeners = [];
    this.transientBefore = null;
  }

  Editor.prototype.on = function (listener) {
    this.listeners.push(listener);
  };

  Editor.prototype.emit = function (kind, detail) {
    this.listeners.forEach(function (listener) { listener(kind, detail); });
  };

  // Replace everything with the server's shapes; history starts afresh.
  Editor.prototype.load = function (serverShapes) {
    var self = this;
    this.shapes = (serverShapes || []).map(function (s) {
      return { uid: self.nextUid++, classId: s.label_class, polygons: fromGeometry(s.geometry) };
    }).filter(function (s) { return s.polygons.length > 0; });
    this.past = [];
    this.future = [];
    this.transientBefore = null;
    this.emit("load");
  };

  // Adopt the server's cleaned shapes (after a repair or clip) as one undoable step.
  Editor.prototype.adopt = function (serverShapes) {
    var self = this;
    return this.change("repaired by the server", function () {
      self.shapes = serverShapes.map(function (s, i) {
        var uid = self.shapes[i] ? self.shapes[i].uid : self.nextUid++;
        return { uid: uid, classId: s.label_class, polygons: fromGeometry(s.geometry) };
      }).filter(function (s) { return s.polygons.length > 0; });
    }, { silent: true });
  };

  Editor.prototype.snapshot = function () {
    return JSON.stringify(this.shapes);
  };

  // Run `mutate`; when it does not return false, record the state before it for undo.
  Editor.prototype.change = function (label, mutate, options) {
    var before = this.snapshot();
    var result = mutate.call(this);
    if (result === false) {
      return false;
    }
    this.past.push(before);
    if (this.past.length > MAX_HISTORY) {
      this.past.shift();
    }
    this.future = [];
    this.emit("change", { label: label, silent: !!(options && options.silent) });
    return result === undefined ? true : result;
  };

  Editor.prototype.canUndo = function () { return this.past.length > 0; };
  Editor.prototype.canRedo = function () { return this.future.length > 0; };

  Editor.prototype.undo = function () {
    if (!this.past.length) {
      return false;
    }
    this.future.push(this.snapshot());
    this.shapes = JSON.parse(this.past.pop());
    this.emit("change", { label: "undo" });
    return true;
  };

  Editor.prototype.redo = function () {
    if (!this.future.length) {
      return false;
    }
    this.past.push(this.snapshot());
    this.shapes = JSON.parse(this.future.pop());
    this.emit("change", { label: "redo" });
    return true;
  };

  Editor.prototype.find = function (uid) {
    for (var i = 0; i < this.shapes.length; i++) {
      if (this.shapes[i].uid === uid) {
        return this.shapes[i];
      }
    }
    return null;
  };

  // A new shape from one closed ring; returns its uid (or 0 when the ring is degenerate).
  Editor.prototype.addShape = function (classId, ring) {
    if (ring.length < 3 || ringArea(ring) <= 0) {
      return 0;
    }
    var uid = this.nextUid++;
    this.change("add shape", function () {
      this.shapes.push({ uid: uid, classId: classId, polygons: [[ring.map(function (p) {
        return [round1(p[0]), round1(p[1])];
      })]] });
    });
    return uid;
  };

  // Make `ring` an interior ring of the smallest polygon that contains it (the preferred
  // shape first). Returns {ok, uid} or {ok: false, reason}.
  Editor.prototype.addHole = function (ring, preferUid) {
    if (ring.length < 3 || ringArea(ring) <= 0) {
      return { ok: false, reason: "A hole needs at least three points." };
    }
    var best = null;
    this.shapes.forEach(function (shape) {
      shape.polygons.forEach(function (rings, index) {
        if (!ringInsideRing(ring, rings[0])) {
          return;
        }
        // Inside an existing hole means outside this polygon's area.
        for (var h = 1; h < rings.length; h++) {
          if (ring.some(function (p) { return pointInRing(p, rings[h]); })) {
            return;
          }
        }
        var area = ringArea(rings[0]);
        var preferred = shape.uid === preferUid;
        if (!best || (preferred && !best.preferred) ||
            (preferred === best.preferred && area < best.area)) {
          best = { uid: shape.uid, index: index, area: area, preferred: preferred };
        }
      });
    });
    if (!best) {
      return { ok: false, reason: "Draw the hole entirely inside a shape." };
    }
    var target = best;
    this.change("cut hole", function () {
      var shape = this.find(target.uid);
      shape.polygons[target.index].push(ring.map(function (p) {
        return [round1(p[0]), round1(p[1])];
      }));
    });
    return { ok: true, uid: target.uid };
  };

  Editor.prototype.deleteShape = function (uid) {
    return this.change("delete shape", function () {
      var before = this.shapes.length;
      this.shapes = this.shapes.filter(function (s) { return s.uid !== uid; });
      return this.shapes.length < before ? true : false;
    });
  };

  Editor.prototype.setClass = function (uid, classId) {
    var shape = this.find(uid);
    if (!shape || shape.classId === classId) {
      return false;
    }
    return this.change("change class", function () {
      this.find(uid).classId = classId;
    });
  };

  // Dragging a vertex: begin, move (no history), end (one undo step for the whole drag).
  Editor.prototype.beginTransient = function () {
    this.transientBefore = this.snapshot();
  };

  Editor.prototype.moveVertex = function (uid, at, point) {
    var shape = this.find(uid);
    if (!shape) {
      return;
    }
    shape.polygons[at.polygon][at.ring][at.index] = [round1(point[0]), round1(point[1])];
    this.emit("transient");
  };

  Editor.prototype.endTransient = function () {
    var before = this.transientBefore;
    this.transientBefore = null;
    if (before === null || before === this.snapshot()) {
      return false;
    }
    this.past.push(before);
    this.future = [];
    this.emit("change", { label: "move vertex" });
    return true;
  };

  // Delete one vertex; a ring left with fewer than three goes too (a hole, or one part of a
  // multipolygon). The last ring of a shape is kept: delete the shape instead.
  Editor.prototype.deleteVertex = function (uid, at) {
    var shape = this.find(uid);
    if (!shape) {
      return { ok: false, reason: "No such shape." };
    }
    var rings = shape.polygons[at.polygon];
    var ring = rings[at.ring];
    if (ring.length > 3) {
      this.change("delete vertex", function () {
        this.find(uid).polygons[at.polygon][at.ring].splice(at.index, 1);
      });
      return { ok: true };
    }
    if (at.ring > 0) {
      this.change("delete hole", function () {
        this.find(uid).polygons[at.polygon].splice(at.ring, 1);
      });
      return { ok: true, removedRing: true };
    }
    if (shape.polygons.length > 1) {
      this.change("delete part", function () {
        this.find(uid).polygons.splice(at.polygon, 1);
      });
      return { ok: true, removedRing: true };
    }
    return { ok: false, reason: "A shape needs three vertices: delete the shape instead." };
  };

  // The topmost shape under an image point, or null.
  Editor.prototype.shapeAt = function (point) {
    for (var i = this.shapes.length - 1; i >= 0; i--) {
      var shape = this.shapes[i];
      for (var k = 0; k < shape.polygons.length; k++) {
        if (pointInPolygon(point, shape.polygons[k])) {
          return shape;
        }
      }
    }
    return null;
  };

  // The draft's shapes as the API takes them.
  Editor.prototype.payload = function () {
    return this.shapes.map(function (shape) {
      return { label_class: shape.classId, geometry: toGeometry(shape) };
    });
  };

  HC.Editor = Editor;
  HC.geometry = {
    round1: round1,
    ringArea: ringArea,
    pointInRing: pointInRing,
    pointInPolygon: pointInPolygon,
    shapeArea: shapeArea,
    vertexCount: vertexCount,
    holeCount: holeCount,
    toGeometry: toGeometry,
    fromGeometry: fromGeometry,
  };
})(window.HC = window.HC || {});
