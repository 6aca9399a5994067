"""Sloan exec news and webinars (Salesforce community page + Aura POST): demo payloads for `learn up --demo` and the tests (see sources/_demo.py)."""

from __future__ import annotations

import json
from datetime import timedelta

from sources._demo import (
    FUTURE,
    DemoServer,
    Request,
    Response,
    iso,
)


def community_page(fwuid: str = "DEMO-FWUID", app_id: str = "DEMO-APP") -> bytes:
    """A community page carrying the Aura framework id and app id (URL-encoded, as Salesforce)."""
    from urllib.parse import quote

    context = {
        "mode": "PROD",
        "app": "siteforce:communityApp",
        "fwuid": fwuid,
        "loaded": {"APPLICATION@markup://siteforce:communityApp": app_id},
    }
    encoded = quote(json.dumps(context, separators=(",", ":")), safe="")
    return f'<html><script src="/s/sfsites/l/{encoded}/app.js"></script></html>'.encode()


def sloan_news_items(n: int = 4) -> dict[str, list[dict]]:
    news = [
        {
            "managedContentId": f"20Y6g00000DEMO{i}",
            "contentUrlName": f"leading-with-data-{i}",
            "publishedDate": iso(FUTURE - timedelta(days=3 * i)).replace("Z", ".000Z"),
            "title": f"Leading with data, part {i + 1}",
            "type": "Blog_Post",
            "contentNodes": {
                "Summary": {"nodeType": "Text", "value": "What executives ask about AI."},
                "First_Section_Content": {
                    "nodeType": "RichText",
                    "value": "&lt;p&gt;Body&lt;/p&gt;",
                },
                "Featured_Image": {"url": f"/cms/delivery/media/DEMO{i}", "altText": "A speaker"},
                "Quote_Author": {"nodeType": "Text", "value": "Jane Doe"},
            },
            "associations": {"topics": [{"id": "0TO1", "name": "Leadership"}]},
        }
        for i in range(n)
    ]
    webinars = [
        {
            "associations": {"topics": [{"id": "0TO6g", "name": "Upcoming Webinars"}]},
            "contentKey": f"MCDEMOWEBINAR{i}",
            "contentNodes": {
                "Description": {"nodeType": "Text", "value": "A live session with faculty."},
                "Headline_Text": {"nodeType": "Text", "value": "Save the date for:"},
                "Image_Text": {"nodeType": "Text", "value": f"March {10 + i}, 2031"},
                "CTA_Button_URL": {
                    "nodeType": "Url",
                    "value": f"https://exec.mit.edu/s/webinar-post/demo-{i}",
                },
                "Name": {"nodeType": "NameField", "value": f"Demo Webinar {i}"},
            },
            "contentUrlName": f"demo-webinar-{i}",
            "language": "en_US",
            "managedContentId": f"20Y6g00000WEB{i}",
            "publishedDate": "2031-01-24T20:28:43.000Z",
            "title": f"Demo Webinar {i}",
            "type": "Card_Display_Item",
            "typeLabel": "Card Display Item",
        }
        for i in range(2)
    ]
    return {"news": news, "webinars": webinars}


def install_sloan_news(server: DemoServer) -> dict[str, str]:
    items = sloan_news_items()
    server.route("/s/blog", Response(200, community_page(), {"Content-Type": "text/html"}))
    server.route("/s/webinars", Response(200, community_page(), {"Content-Type": "text/html"}))

    def aura(req: Request) -> Response:
        from urllib.parse import parse_qs

        form = parse_qs(req.body.decode())
        message = json.loads(form["message"][0])
        kind = "webinars" if message["actions"][0]["params"]["topicName"] else "news"
        return Response.json(
            {
                "actions": [
                    {
                        "id": "111;a",
                        "state": "SUCCESS",
                        "returnValue": {"content": items[kind], "pageNumber": 0},
                    }
                ],
                "context": {"mode": "PROD"},
            }
        )

    server.route("/s/sfsites/aura", aura, method="POST")
    return {"SLOAN_EXEC_BASE_URL": f"{server.base_url}/"}


install = install_sloan_news
