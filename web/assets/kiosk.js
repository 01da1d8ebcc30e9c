// keiline kiosk sign-in: a line-side TV opens /kiosk#<token>. The part of
// a URL after # never leaves the browser (no server log, no Referer); this
// script takes the token from it, removes it from the address and history
// entry, and posts it in the form.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var tok = window.location.hash.slice(1);
  if (!tok) { return; }
  history.replaceState(null, "", window.location.pathname);
  if (document.getElementById("msg")) { return; } // refused once: do not loop
  document.getElementById("token").value = decodeURIComponent(tok);
  document.getElementById("kiosk").submit();
});
