"""A person's WeChat account: binding it to the roster (绑定, by name and ID tail or by a
QR code), ending that (解绑), and asking for a person (人工). The roster itself, and who
someone is, live in `members`, below everything that needs them."""
