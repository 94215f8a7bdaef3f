"""Price signals: interval prices from OpenADR PRICE events, ``POST /v1/prices`` and a day-ahead
price file, turned into facility limits by a pure price policy (``policy``)."""
