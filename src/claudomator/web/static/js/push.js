// "Notify me": a service worker plus a Web Push subscription registered with the server.

import { get, post } from "./api.js";
import { flash } from "./dom.js";

function keyBytes(base64url) {
  const padded = base64url.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(base64url.length / 4) * 4, "=");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

/** `promise`, or a rejection naming `what` after `seconds` (browsers may wait forever). */
function within(seconds, what, promise) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${seconds} s`)), seconds * 1000);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function say(button, message) {
  button.title = message;
  flash(message);
}

async function subscribe(button) {
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
    say(button, "Notifications: this browser has no Web Push support (it needs HTTPS or localhost).");
    return;
  }
  let permission;
  try {
    permission = await within(60, "the permission prompt", Notification.requestPermission());
  } catch (error) {
    say(button, `Notifications: ${error.message}.`);
    return;
  }
  if (permission !== "granted") {
    say(button, `Notifications are ${permission === "denied" ? "blocked for this site in the browser's settings" : "not allowed"}; nothing was registered.`);
    return;
  }
  let registration;
  try {
    registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    await within(10, "the service worker", navigator.serviceWorker.ready);
  } catch (error) {
    say(button, `Notifications: the service worker could not be registered (${error.message}).`);
    return;
  }
  let key;
  try {
    key = (await get("/api/push/key")).public_key;
  } catch (error) {
    say(button, `Notifications: the server has no push key (${error.message}).`);
    return;
  }
  let subscription;
  try {
    subscription =
      (await registration.pushManager.getSubscription()) ||
      (await within(
        10,
        "the browser's push service",
        registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key) }),
      ));
  } catch (error) {
    say(button, `Notifications: the browser's push service is unavailable (${error.name}: ${error.message}).`);
    return;
  }
  try {
    await post("/api/push/subscriptions", subscription.toJSON());
  } catch (error) {
    say(button, `Notifications: the server refused the subscription (${error.message}).`);
    return;
  }
  button.textContent = "Notifications on";
  button.setAttribute("aria-pressed", "true");
  say(button, "Notifications on: this browser is told when a task is blocked, ready, done or failed.");
}

async function unsubscribe(button, subscription) {
  try {
    await post("/api/push/unsubscribe", { endpoint: subscription.endpoint });
  } catch (error) {
    say(button, `Notifications: the server could not forget this browser (${error.message}).`);
    return;
  }
  await subscription.unsubscribe();
  button.textContent = "Notify me";
  button.setAttribute("aria-pressed", "false");
  say(button, "Notifications off for this browser.");
}

export async function setupNotify(button) {
  button.setAttribute("aria-pressed", "false");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const registration = "serviceWorker" in navigator ? await navigator.serviceWorker.getRegistration("/") : null;
      const existing = registration && registration.pushManager ? await registration.pushManager.getSubscription() : null;
      if (existing) await unsubscribe(button, existing);
      else await subscribe(button);
    } finally {
      button.disabled = false;
    }
  });
  if ("serviceWorker" in navigator) {
    const registration = await navigator.serviceWorker.getRegistration("/").catch(() => null);
    const existing = registration && registration.pushManager ? await registration.pushManager.getSubscription().catch(() => null) : null;
    if (existing) {
      button.textContent = "Notifications on";
      button.setAttribute("aria-pressed", "true");
    }
  }
}
