"""The gateway as an OpenADR 3.1 VEN: utilities' events become gridlink events (and so budgets),
and reports of what the facility did go back to the VTN. docs/openadr.md is the guide."""
