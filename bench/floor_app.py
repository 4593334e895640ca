"""The floor of bench/side_by_side.py: a bare Flask endpoint that reads the form and answers a
small JSON, served exactly as the provider is. No Flask view can be faster under the same
server; the provider's fast lane (server/web/fast_lane.py) answers its two hot routes in front
of Flask, so it can be."""

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/bc-authorize")
@app.post("/token")
def endpoint():
    form = request.form.to_dict()
    return jsonify(auth_req_id="x" * 43, expires_in=300, interval=5, n=len(form))
