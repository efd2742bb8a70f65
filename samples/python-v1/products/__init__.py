"""products: echoes its route values (category, optional int id) as JSON; function-level auth."""

import json

import azure.functions as func


def main(req: func.HttpRequest) -> func.HttpResponse:
    category = req.route_params.get("category")
    product_id = req.route_params.get("id")
    payload = {"category": category, "id": int(product_id) if product_id else None}
    return func.HttpResponse(json.dumps(payload, separators=(",", ":")), mimetype="application/json")
