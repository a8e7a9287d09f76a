"""The ceiling for the collect load run: a bare Flask app that answers a POST with a small JSON.

It reads and parses the same JSON body the collect API gets, and does nothing else.
"""
from flask import Flask, request

app = Flask(__name__)


@app.post("/hello")
def hello():
    """Parse the body and answer like the collect API would (without storing anything)."""
    body = request.get_json(force=True, silent=True) or {}
    return {"accepted": len(body.get("events") or [])}, 202
