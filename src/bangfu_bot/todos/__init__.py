"""To-dos (待办): things a person must do, e.g. call a member who asked for 人工."""
