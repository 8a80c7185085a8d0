"""The floor: the service's HTTP stack (uvicorn[standard] + FastAPI + multipart parsing) doing no work.

POST /predict reads the uploaded file exactly as the service does and answers a constant JSON body: no decoding,
no model. Its throughput is the most any endpoint taking a multipart upload can reach on this stack.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, File, UploadFile
from fastapi.responses import Response

from benchmarks.serve import serve

CONSTANT = b'{"predicted_class":0,"confidence":1.0,"probabilities":[1,0,0,0,0,0,0,0,0,0],"model_version":0}'

app = FastAPI(title="benchmark floor")


@app.post("/predict")
async def predict(file: Annotated[UploadFile, File()]) -> Response:
    await file.read()
    return Response(CONSTANT, media_type="application/json")


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ready"}


if __name__ == "__main__":
    serve("benchmarks.floor_app:app")
