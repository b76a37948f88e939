// The login page waits for its QR code to be scanned, then opens the desk.
(function () {
  const status = document.getElementById("qr-status");
  if (!status) return;
  async function poll() {
    try {
      const response = await fetch("/desk/login/wait", { credentials: "same-origin", cache: "no-store" });
      const data = await response.json();
      if (data.state === "signed_in") { window.location.assign(data.go); return; }
      if (data.state === "expired" || data.state === "used") {
        window.location.assign("/desk/login?why=" + data.state); return;
      }
    } catch (error) { /* the network blinked: try again */ }
    setTimeout(poll, 1500);
  }
  setTimeout(poll, 1000);
})();
