"""The web page of a trained net (``advconv demo``)."""

HOST, PORT = "127.0.0.1", 7860  # where the page listens unless told otherwise: this machine only; Gradio's usual port
