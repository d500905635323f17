"""The crops stage: the native-resolution window and the wider aligned crop of every kept face (docs/views.md)."""
