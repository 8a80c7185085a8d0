"""The floor: the service's HTTP stack (uvicorn[standard] + FastAPI + multipart parsing) doing no work.

POST /predict reads the uploaded file exactly as the service does (app.uploads.read_form_files, the fastest way we
know to take a multipart upload on this stack) and answers a constant JSON body: no decoding, no model. Its
throughput is the most any endpoint taking a multipart upload can reach here.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from app.settings import get_settings
from app.uploads import read_form_files
from benchmarks.serve import serve

CONSTANT = b'{"predicted_class":0,"confidence":1.0,"probabilities":[1,0,0,0,0,0,0,0,0,0],"model_version":0}'

app = FastAPI(title="benchmark floor")


@app.post("/predict")
async def predict(request: Request) -> Response:
    await read_form_files(request, "file", get_settings().max_upload_bytes)
    return Response(CONSTANT, media_type="application/json")


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ready"}


if __name__ == "__main__":
    serve("benchmarks.floor_app:app")
