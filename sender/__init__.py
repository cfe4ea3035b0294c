"""Traffic sender: posts invoices to the scoring API, like a stream of live invoices.

``python -m sender --help`` lists the options. The package talks to the service over HTTP
only and uses the shared package for the invoice generator and the request schema.
"""
