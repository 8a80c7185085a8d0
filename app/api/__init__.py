"""HTTP routers: thin translations between a protocol and the service's two calls (preprocess, predict)."""
