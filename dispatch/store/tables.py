"""Every table's Core handle, declared once (the store's modules build statements on them).

Only ``dispatch/store/`` imports this: code above the store asks a repository function.
"""

from __future__ import annotations

from dispatch import models

VENDORS = models.table_of(models.Vendor)
STOCKS = models.table_of(models.Stock)
DEVICES = models.table_of(models.Device)
ITEMS = models.table_of(models.Item)
ITEM_VENDORS = models.table_of(models.ItemVendor)
TEMPLATES = models.table_of(models.Template)
LOCATIONS = models.table_of(models.ShipToLocation)
BUYER = models.table_of(models.Buyer)
COUNTERS = models.table_of(models.Counter)
ORDERS = models.table_of(models.PurchaseOrder)
LINES = models.table_of(models.PurchaseOrderItem)
TRANSACTIONS = models.table_of(models.LedgerTransaction)
REQUESTS = models.table_of(models.ErpRequest)
JOBS = models.table_of(models.DispatchJob)
DELIVERIES = models.table_of(models.Delivery)
RESPONSES = models.table_of(models.OrderResponseRecord)
DEADLINES = models.table_of(models.ResponseDeadline)
