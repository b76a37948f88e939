"""The WeChat platform edge: webhook, crypto, outbound client and the fake WeChat. No domain."""
