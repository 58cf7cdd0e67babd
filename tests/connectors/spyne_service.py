"""A SOAP service built with spyne, run as a subprocess by the SOAP destination tests (spyne
bundles an old six that warns on import, so it stays out of the pytest process).

It checks WS-Security UsernameToken itself (user ``conduit``, password ``s3cret``) and answers:
``SubmitResult(patientId, value)`` -> ``"stored <patientId>=<value>"``; patientId ``down`` gives a
Server fault, a missing or wrong token a Client fault. Prints its port, then serves.
"""

from __future__ import annotations

import sys
import warnings

warnings.simplefilter("ignore")

from wsgiref.simple_server import WSGIRequestHandler, make_server  # noqa: E402

from spyne import Application, Fault, Integer, ServiceBase, Unicode, rpc  # noqa: E402
from spyne.protocol.soap import Soap11  # noqa: E402
from spyne.server.wsgi import WsgiApplication  # noqa: E402

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
CALLS: list[str] = []


def _credentials(ctx: object) -> tuple[str | None, str | None]:
    document = getattr(ctx, "in_document", None)
    if document is None:
        return None, None
    user = document.find(f".//{{{WSSE}}}UsernameToken/{{{WSSE}}}Username")
    password = document.find(f".//{{{WSSE}}}UsernameToken/{{{WSSE}}}Password")
    return (user.text if user is not None else None,
            password.text if password is not None else None)


class ResultService(ServiceBase):
    @rpc(Unicode(min_occurs=1), Integer(min_occurs=1), _returns=Unicode)
    def SubmitResult(ctx, patientId, value):
        if _credentials(ctx) != ("conduit", "s3cret"):
            raise Fault(faultcode="Client.Authentication", faultstring="bad credentials")
        if patientId == "down":
            raise Fault(faultcode="Server", faultstring="database down")
        CALLS.append(patientId)
        return f"stored {patientId}={value}"


class Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    app = Application([ResultService], "urn:example:results", in_protocol=Soap11(),
                      out_protocol=Soap11())
    server = make_server("127.0.0.1", 0, WsgiApplication(app), handler_class=Quiet)
    print(server.server_port, flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
