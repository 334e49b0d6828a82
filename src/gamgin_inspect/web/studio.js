// The web entry of Foxglove Studio 1.48 around @foxglove/studio-base's App: settings and
// layouts kept in this page's memory (a fresh profile per test), the Foxglove WebSocket
// data source, and the URL's deep link (?ds=foxglove-websocket&ds.url=ws://...) opening
// the connection at start.
(function () {
  "use strict";
  const studio = window; // the UMD bundle puts its exports on the global object

  class MemoryConfiguration {
    constructor() { this.values = new Map(); this.listeners = new Map(); }
    get(key) { return this.values.get(key); }
    async set(key, value) {
      this.values.set(key, value);
      for (const cb of this.listeners.get(key) || []) { cb(value); }
    }
    addChangeListener(key, cb) {
      if (!this.listeners.has(key)) { this.listeners.set(key, new Set()); }
      this.listeners.get(key).add(cb);
    }
    removeChangeListener(key, cb) { (this.listeners.get(key) || new Set()).delete(cb); }
  }

  class MemoryLayoutStorage {
    constructor() { this.spaces = new Map(); }
    space(ns) {
      if (!this.spaces.has(ns)) { this.spaces.set(ns, new Map()); }
      return this.spaces.get(ns);
    }
    async list(ns) { return Array.from(this.space(ns).values()); }
    async get(ns, id) { return this.space(ns).get(id); }
    async put(ns, layout) { this.space(ns).set(layout.id, layout); return layout; }
    async delete(ns, id) { this.space(ns).delete(id); }
    async importLayouts({ fromNamespace, toNamespace }) {
      for (const layout of await this.list(fromNamespace)) { await this.put(toNamespace, layout); }
      this.spaces.delete(fromNamespace);
    }
    async migrateUnnamespacedLayouts() {}
  }

  async function main() {
    await studio.initI18n();
    const config = new MemoryConfiguration();
    // no "open in the desktop app?" screen, no sign-in prompt, nothing sent anywhere
    await config.set(studio.AppSetting.LAUNCH_PREFERENCE, "web");
    await config.set(studio.AppSetting.HIDE_SIGN_IN_PROMPT, true);
    await config.set(studio.AppSetting.TELEMETRY_ENABLED, false);
    await config.set(studio.AppSetting.CRASH_REPORTING_ENABLED, false);
    await config.set(studio.AppSetting.UPDATES_ENABLED, false);
    const app = window.React.createElement(studio.App, {
      deepLinks: [window.location.href],
      appConfiguration: config,
      dataSources: [new studio.FoxgloveWebSocketDataSourceFactory()],
      layoutStorage: new MemoryLayoutStorage(),
      extensionLoaders: [],
      enableLaunchPreferenceScreen: false,
      enableGlobalCss: true,
    });
    window.ReactDOM.render(app, document.getElementById("root"));
  }

  main().catch((err) => {
    document.body.textContent = "Foxglove Studio did not start: " + err;
    console.error(err);
  });
})();
