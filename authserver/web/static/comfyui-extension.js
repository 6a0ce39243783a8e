// mss-login's extension of the ComfyUI frontend: who is signed in, with the account page and
// sign-out, and the proxy's refusals (403 with a code) shown as readable messages instead of
// console errors. Served by the auth server and announced in ComfyUI's /api/extensions answer:
// nothing to install in ComfyUI.
const { app } = window.comfyAPI?.app ?? (await import("/scripts/app.js"));
const { api } = window.comfyAPI?.api ?? (await import("/scripts/api.js"));

const me = await fetch("/mss-login/api/me", { credentials: "same-origin" })
  .then((r) => (r.ok ? r.json() : null))
  .catch(() => null);

function badge() {
  if (!me || document.getElementById("mss-login-user")) return;
  const box = document.createElement("div");
  box.id = "mss-login-user";
  box.style.cssText =
    "position:fixed;bottom:6px;right:8px;z-index:10000;font:12px sans-serif;color:#ddd;" +
    "background:#222d;padding:3px 8px;border-radius:6px";
  const name = document.createElement("span");
  name.className = "mss-login-name";
  name.textContent = `${me.username} (${me.role})`;
  box.append(name);
  for (const [href, label] of [["/mss-login/account", "Account"], ["/logout", "Sign out"]]) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = label;
    a.style.cssText = "color:#9cf;margin-left:8px";
    box.append(a);
  }
  document.body.append(box);
}

// The role's ui_* flags: a flag set to false hides that part of the UI (it changes what is
// shown, not what is allowed: the proxy decides that). ui_<name> hides the sidebar tab <name>
// (ui_node_library → the node library, ui_model_library, ui_workflows, ui_templates,
// ui_assets); ui_queue and ui_show_queue hide the queue and its history. Every flag that is
// off is also listed in <html data-mss-login-ui-off="…">, for a studio's own stylesheet.
const aliases = { queue: ["queue", "assets"], show_queue: ["queue", "assets"] };
function applyUIFlags() {
  const off = Object.entries(me?.ui ?? {})
    .filter(([flag, on]) => flag.startsWith("ui_") && on === false)
    .map(([flag]) => flag.slice(3));
  if (!off.length || document.getElementById("mss-login-ui-flags")) return;
  document.documentElement.dataset.mssLoginUiOff = off.map((f) => "ui_" + f).join(" ");
  const tabs = off.flatMap((f) => aliases[f] ?? [f]).map((f) => f.replaceAll("_", "-"));
  const style = document.createElement("style");
  style.id = "mss-login-ui-flags";
  style.textContent = tabs.map((t) => `.${CSS.escape(t + "-tab-button")}`).join(",") + "{display:none !important}";
  document.head.append(style);
}

function show(message) {
  const toast = app.extensionManager?.toast;
  if (toast?.add) {
    toast.add({ severity: "error", summary: "MSS-Login", detail: message, life: 8000 });
    return;
  }
  console.warn("MSS-Login:", message);
}

// The proxy's refusals carry {"code", "error"}: the error is meant for people.
const fetchApi = api.fetchApi.bind(api);
api.fetchApi = async (route, options) => {
  const res = await fetchApi(route, options);
  if (res.status === 403 || res.status === 409 || res.status === 413) {
    try {
      const body = await res.clone().json();
      if (body && body.code && body.error) show(body.error);
    } catch {
      // not one of the proxy's answers
    }
  }
  return res;
};

app.registerExtension({
  name: "mss-login.session",
  setup() {
    badge();
    applyUIFlags();
  },
});
badge();
applyUIFlags();
