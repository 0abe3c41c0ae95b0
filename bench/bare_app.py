"""The limit for the booking figure: a bare Flask JSON endpoint under the same gunicorn
settings (deploy/gunicorn.conf.py): parse the body, answer 201 with JSON. No auth, no
validation, no store — what gunicorn + Flask cost on their own on this machine."""

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")


@app.post("/echo")
def echo():
    body = request.get_json(force=True)
    return jsonify({**body, "status": "booked"}), 201
