"""`serve`: the trained model behind HTTP (FastAPI on uvicorn): `POST /predict` with dynamic
batching, `GET /health`, `GET /metadata`, and a page at `/` to try it in a browser.

It runs `inference.py`'s model, so the server never imports Lightning, torchmetrics or the logger.
"""
