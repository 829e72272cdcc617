/* Signalpost browser agent. No dependencies.
 *
 *   const agent = await Signalpost.load({ publicKey: "pk_live_...", endpoint: "https://your-host" });
 *   const { requestId, visitorId, confidence, visitorFound } = await agent.identify({ type: "login", linkedId: "user_42" });
 *
 * The visitor id is kept in a first-party cookie and localStorage as a hint; the server identifies
 * the device from its components, so clearing them, or a private window, keeps the same visitor.
 * Beside it the agent keeps a storage id, drawn once per storage: a second browser that was
 * answered the same visitor id (a look-alike device) shows as a second storage.
 */
(function (global) {
  "use strict";
  var STORE_KEY = "_spvid";
  var FONTS = ["Arial", "Arial Black", "Calibri", "Cambria", "Comic Sans MS", "Consolas", "Courier New",
    "DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono", "Droid Sans", "Georgia", "Helvetica", "Helvetica Neue",
    "Impact", "Liberation Mono", "Liberation Sans", "Liberation Serif", "Lucida Console", "Lucida Grande",
    "Menlo", "Monaco", "Noto Sans", "Noto Serif", "Noto Color Emoji", "Palatino", "Roboto", "Segoe UI",
    "SF Pro Text", "Tahoma", "Times New Roman", "Trebuchet MS", "Ubuntu", "Verdana", "Cantarell", "FreeSans"];

  function hash(str) { // FNV-1a 32-bit twice with different seeds: 16 hex characters
    var h1 = 0x811c9dc5, h2 = 0x01000193 ^ 0x5bd1e995;
    for (var i = 0; i < str.length; i++) {
      var c = str.charCodeAt(i);
      h1 ^= c; h1 = Math.imul(h1, 0x01000193);
      h2 ^= c; h2 = Math.imul(h2, 0x5bd1e995); h2 ^= h2 >>> 15;
    }
    return ("0000000" + (h1 >>> 0).toString(16)).slice(-8) + ("0000000" + (h2 >>> 0).toString(16)).slice(-8);
  }
  function safe(fn, fallback) { try { var v = fn(); return v === undefined ? fallback : v; } catch (e) { return fallback; } }

  function canvasHash() {
    return safe(function () {
      var c = document.createElement("canvas"); c.width = 240; c.height = 60;
      var x = c.getContext("2d");
      x.textBaseline = "top"; x.font = "14px 'Arial'"; x.fillStyle = "#f60"; x.fillRect(100, 1, 62, 20);
      x.fillStyle = "#069"; x.fillText("Signalpost, canvas \u263a 1.0", 2, 15);
      x.fillStyle = "rgba(102, 204, 0, 0.7)"; x.fillText("Signalpost, canvas \u263a 1.0", 4, 17);
      x.globalCompositeOperation = "multiply"; x.fillStyle = "rgb(255,0,255)";
      x.beginPath(); x.arc(50, 50, 40, 0, Math.PI * 2, true); x.closePath(); x.fill();
      return hash(c.toDataURL());
    }, "");
  }

  function webgl() {
    return safe(function () {
      var c = document.createElement("canvas");
      var gl = c.getContext("webgl") || c.getContext("experimental-webgl");
      if (!gl) return null;
      var info = gl.getExtension("WEBGL_debug_renderer_info");
      return {
        vendor: String(info ? gl.getParameter(info.UNMASKED_VENDOR_WEBGL) : gl.getParameter(gl.VENDOR)),
        renderer: String(info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER)),
        extensions: (gl.getSupportedExtensions() || []).slice(0, 256)
      };
    }, null);
  }

  function audioHash() {
    return new Promise(function (resolve) {
      try {
        var Ctx = global.OfflineAudioContext || global.webkitOfflineAudioContext;
        if (!Ctx) return resolve("");
        var ctx = new Ctx(1, 5000, 44100);
        var osc = ctx.createOscillator(); osc.type = "triangle"; osc.frequency.value = 10000;
        var comp = ctx.createDynamicsCompressor();
        comp.threshold.value = -50; comp.knee.value = 40; comp.ratio.value = 12;
        comp.attack.value = 0; comp.release.value = 0.25;
        osc.connect(comp); comp.connect(ctx.destination); osc.start(0);
        var done = false;
        setTimeout(function () { if (!done) { done = true; resolve(""); } }, 1000);
        ctx.startRendering().then(function (buf) {
          var data = buf.getChannelData(0), sum = 0;
          for (var i = 4500; i < 5000; i++) sum += Math.abs(data[i]);
          if (!done) { done = true; resolve(sum.toString()); }
        }, function () { if (!done) { done = true; resolve(""); } });
      } catch (e) { resolve(""); }
    });
  }

  function fonts() {
    return safe(function () {
      var span = document.createElement("span");
      span.style.cssText = "position:absolute;left:-9999px;font-size:72px;visibility:hidden";
      span.textContent = "mmmmmmmmmmlli10OQ";
      document.body.appendChild(span);
      var base = {}, found = [];
      ["monospace", "sans-serif", "serif"].forEach(function (f) { span.style.fontFamily = f; base[f] = span.offsetWidth + "x" + span.offsetHeight; });
      FONTS.forEach(function (font) {
        for (var f in base) {
          span.style.fontFamily = "'" + font + "'," + f;
          if (span.offsetWidth + "x" + span.offsetHeight !== base[f]) { found.push(font); break; }
        }
      });
      document.body.removeChild(span);
      return found;
    }, []);
  }

  function mathHash() {
    var M = Math;
    return hash([M.acos(0.123), M.acosh(1e308), M.asinh(1), M.atanh(0.5), M.cbrt(100), M.cosh(1),
      M.expm1(1), M.log1p(10), M.sinh(1), M.tan(-1e308), M.tanh(1), M.pow(M.PI, -100)].join(","));
  }

  function storage() {
    var s = {
      localStorage: safe(function () { return !!global.localStorage; }, false),
      sessionStorage: safe(function () { return !!global.sessionStorage; }, false),
      indexedDB: safe(function () { return !!global.indexedDB; }, false),
      cookies: safe(function () { return navigator.cookieEnabled; }, false),
      quota: null
    };
    if (navigator.storage && navigator.storage.estimate) {
      return navigator.storage.estimate().then(function (e) { s.quota = Math.round(e.quota || 0); return s; }, function () { return s; });
    }
    return Promise.resolve(s);
  }

  function automation() {
    var ua = navigator.userAgent || "";
    var chromium = /Chrome\//.test(ua);
    var a = {
      webdriver: navigator.webdriver === true,
      headlessUA: /HeadlessChrome/.test(ua),
      noChromeObject: chromium && !global.chrome,
      noPlugins: chromium && (!navigator.plugins || navigator.plugins.length === 0),
      noLanguages: !navigator.languages || navigator.languages.length === 0,
      zeroOuterSize: global.outerWidth === 0 && global.outerHeight === 0,
      permissionsMismatch: false
    };
    if (navigator.permissions && global.Notification) {
      return navigator.permissions.query({ name: "notifications" }).then(function (p) {
        a.permissionsMismatch = Notification.permission === "denied" && p.state === "prompt"; return a;
      }, function () { return a; });
    }
    return Promise.resolve(a);
  }

  function clientHints() {
    var d = navigator.userAgentData;
    if (!d) return Promise.resolve(null);
    var hints = { brands: (d.brands || []).map(function (b) { return { brand: b.brand, version: b.version }; }), mobile: !!d.mobile, platform: d.platform || "" };
    if (!d.getHighEntropyValues) return Promise.resolve(hints);
    return d.getHighEntropyValues(["platformVersion", "architecture", "model"]).then(function (v) {
      hints.platformVersion = v.platformVersion || ""; hints.architecture = v.architecture || ""; hints.model = v.model || "";
      return hints;
    }, function () { return hints; });
  }

  function collect() {
    var scr = global.screen || {};
    var base = {
      userAgent: navigator.userAgent || "",
      platform: navigator.platform || "",
      vendor: navigator.vendor || "",
      languages: (navigator.languages || [navigator.language]).filter(Boolean).slice(0, 32),
      timezone: safe(function () { return Intl.DateTimeFormat().resolvedOptions().timeZone; }, ""),
      timezoneOffset: new Date().getTimezoneOffset(),
      screen: { w: scr.width || 0, h: scr.height || 0, availW: scr.availWidth || 0, availH: scr.availHeight || 0,
        colorDepth: scr.colorDepth || 0, pixelRatio: global.devicePixelRatio || 0 },
      hardwareConcurrency: navigator.hardwareConcurrency || null,
      deviceMemory: navigator.deviceMemory || null,
      maxTouchPoints: navigator.maxTouchPoints || 0,
      touchEvent: "ontouchstart" in global,
      canvas: canvasHash(),
      webgl: webgl(),
      fonts: fonts(),
      plugins: safe(function () { return Array.prototype.map.call(navigator.plugins || [], function (p) { return p.name; }).slice(0, 64); }, []),
      math: mathHash()
    };
    return Promise.all([audioHash(), storage(), automation(), clientHints()]).then(function (r) {
      base.audio = r[0]; base.storage = r[1]; base.automation = r[2]; base.clientHints = r[3];
      return base;
    });
  }

  // One value "<visitor id>.<storage id>", so that the two are kept and lost together.
  function readStored() {
    var m = safe(function () { return document.cookie.match(/(?:^|; )_spvid=([^;]+)/); }, null);
    var value = (m && decodeURIComponent(m[1])) || safe(function () { return global.localStorage.getItem(STORE_KEY); }, null) || "";
    var parts = value.split(".");
    return { visitorId: parts[0] || null, storageId: parts[1] || newStorageId() };
  }
  function newStorageId() {
    var bytes = new Uint8Array(12);
    safe(function () { global.crypto.getRandomValues(bytes); return true; }, false) ||
      bytes.forEach(function (_, i) { bytes[i] = Math.floor(Math.random() * 256); });
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function writeStored(visitorId, storageId) {
    var value = visitorId + "." + storageId;
    safe(function () { document.cookie = STORE_KEY + "=" + encodeURIComponent(value) + "; max-age=31536000; path=/; SameSite=Lax"; });
    safe(function () { global.localStorage.setItem(STORE_KEY, value); });
  }

  function Agent(options) {
    this.publicKey = options.publicKey;
    this.endpoint = (options.endpoint || "").replace(/\/$/, "");
  }
  Agent.prototype.identify = function (opts) {
    opts = opts || {};
    var self = this, stored;
    return collect().then(function (components) {
      stored = readStored();
      var body = { components: components, storedVisitorId: stored.visitorId, storageId: stored.storageId };
      if (opts.type) body.type = opts.type;
      if (opts.linkedId) body.linkedId = opts.linkedId;
      if (opts.tag) body.tag = opts.tag;
      return fetch(self.endpoint + "/v1/agent/identify", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Authorization": "Bearer " + self.publicKey },
        body: JSON.stringify(body),
        // Served from the page's own origin, the answer sets the server's cookie, which Safari
        // does not delete after seven days as it does this script's storage.
        credentials: "same-origin"
      });
    }).then(function (res) {
      return res.json().then(function (data) {
        if (!res.ok) { var err = new Error((data.error && data.error.message) || "identification failed"); err.response = data; throw err; }
        writeStored(data.visitorId, stored.storageId);
        return data;
      });
    });
  };

  global.Signalpost = {
    load: function (options) {
      if (!options || !options.publicKey) return Promise.reject(new Error("Signalpost.load needs { publicKey }"));
      return Promise.resolve(new Agent(options));
    }
  };
})(typeof window !== "undefined" ? window : this);
