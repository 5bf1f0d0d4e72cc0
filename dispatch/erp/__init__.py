"""The ERP request queue: shapes of the API's bodies (``schemas``), durable accept and
atomic execution of one request (``queue``), and the in-order executor thread
(``executor``)."""
