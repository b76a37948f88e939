"""People and the organisation tree: the roster, roles and WeChat bindings (绑定)."""
