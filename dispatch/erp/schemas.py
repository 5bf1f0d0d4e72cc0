"""ERP API shapes (seed 004, PascalCase): request bodies and answers.

Only *shape* is checked here (types, integer-ness, lengths, enums, the id-prefix pattern,
unknown keys). A missing value is not a shape error: the business rules report it through
the request result, as SPEC 3 asks. ``null`` means "not sent".
"""

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    WithJsonSchema,
)

INT_MIN, INT_MAX = -(2**31), 2**31 - 1


def no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _date_text(value: Any) -> Any:
    if value is not None and not isinstance(value, str | dt.datetime):
        raise ValueError("must be an ISO 8601 date-time string, e.g. 2017-11-09T11:29:37.501Z")
    return value


def _to_naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    # Seed 004: "Date/time information should be provided in UTC"; naive means UTC.
    if value is not None and value.tzinfo is not None:
        try:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is in year 0 in UTC
            raise ValueError("out of range once converted to UTC (years 1-9999)") from None
    return value


def _price(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | None):
        raise ValueError("must be a JSON number, e.g. 12.5")
    return value


Str50 = Annotated[str, Field(max_length=50), AfterValidator(no_nul)]
Str60 = Annotated[str, Field(max_length=60), AfterValidator(no_nul)]
Str400 = Annotated[str, Field(max_length=400), AfterValidator(no_nul)]
Str4000 = Annotated[str, Field(max_length=4000), AfterValidator(no_nul)]


Int = Annotated[StrictInt, Field(ge=INT_MIN, le=INT_MAX)]
DateTime = Annotated[dt.datetime, BeforeValidator(_date_text), AfterValidator(_to_naive_utc)]
Price = Annotated[
    Decimal,
    BeforeValidator(_price),
    # 15 significant digits: what a JSON number (read as a float) carries exactly.
    Field(max_digits=15, decimal_places=4, allow_inf_nan=False),
    # Documented as what it accepts: a JSON number (a string is refused), |x| < 10^11.
    WithJsonSchema({"type": "number", "exclusiveMinimum": -(10**11), "exclusiveMaximum": 10**11,
                    "description": "at most 15 digits, 4 of them after the decimal point"}),
]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChannelOptions(_Shape):
    IsB2B: StrictBool | None = None
    IsFtp: StrictBool | None = None
    IsEmail: StrictBool | None = None


class FtpOptions(_Shape):
    IsXml: StrictBool | None = None
    IsPdf: StrictBool | None = None
    IsExcel: StrictBool | None = None
    PdfTemplateName: Str50 | None = None
    ExcelTemplateName: Str50 | None = None
    XmlTemplateName: Str50 | None = None  # extension (SPEC 4): else the vendor's xml_template


class EmailOptions(_Shape):
    IsXml: StrictBool | None = None
    IsPdf: StrictBool | None = None
    IsExcel: StrictBool | None = None
    PdfTemplate: Str50 | None = None
    ExcelTemplate: Str50 | None = None
    XmlTemplate: Str50 | None = None  # extension (SPEC 4): else the vendor's xml_template


class SendOptionsIn(_Shape):
    Channel: ChannelOptions | None = None
    FTP: FtpOptions | None = None
    Email: EmailOptions | None = None


class CreateItem(_Shape):
    CustomItemId: Str50 | None = None
    CustomItemQuantity: Int | None = None
    CustomItemPricePerPiece: Price | None = None
    ItemId: Str50 | None = None
    DeviceId: Str50 | None = None
    TotalQuantity: Int | None = None
    Note: Str4000 | None = None
    LineReference: Str400 | None = None


class CreateRequest(_Shape):
    VendorId: Str50 | None = None
    StockName: Str50 | None = None
    DeviceId: Str50 | None = None
    Status: Literal["Suggested", "New", "Active", "Cancelled"] | None = None
    IsConsignment: StrictBool | None = None
    Reference: Str400 | None = None
    Notes: Str4000 | None = None
    CustomIdPrefix: Annotated[str, Field(pattern=r"^[A-Za-z_]{1,10}$")] | None = None
    CustomShipToId: Str60 | None = None
    SendOptions: SendOptionsIn | None = None
    PurchaseOrderItems: list[CreateItem] | None = None


class QuantityItem(_Shape):
    Id: Str50 | None = None
    ItemId: Str50 | None = None
    DeviceId: Str50 | None = None
    ReceivedQuantity: Int | None = None
    CancelledQuantity: Int | None = None
    TotalQuantity: Int | None = None
    ExpectedDate: DateTime | None = None


class UpdateQuantityRequest(_Shape):
    OrderId: Str50 | None = None
    PurchaseOrderItems: list[QuantityItem] | None = None


class UpdateOrderRequest(_Shape):
    OrderId: Str50 | None = None
    Status: Literal["Suggested", "Active", "Cancelled"] | None = None
    ShippingDate: DateTime | None = None
    ReceivedByVendorDate: DateTime | None = None
    TrackingNumber: Str50 | None = None
    Reference: Str400 | None = None
    Notes: Str4000 | None = None


REQUEST_MODELS: dict[str, type[_Shape]] = {
    "Create": CreateRequest,
    "UpdateQuantity": UpdateQuantityRequest,
    "UpdateOrder": UpdateOrderRequest,
}


# --- answers (documented in the OpenAPI schema) -------------------------------------------

ObjectStatus = Literal["None", "Created", "Updated", "Deleted"]


class RequestAccepted(BaseModel):
    RequestGuid: str


class ItemResult(BaseModel):
    Id: str | None = None
    ItemId: str | None = None
    Status: ObjectStatus = "None"
    Errors: list[str] = Field(default_factory=list)


class OrderResult(BaseModel):
    Id: str | None = None
    Status: ObjectStatus = "None"
    Errors: list[str] = Field(default_factory=list)
    PurchaseOrderItems: list[ItemResult] = Field(default_factory=list)


class RequestResult(BaseModel):
    Message: str
    Status: Literal["Created", "Ready", "Running", "Completed", "Failed"]
    PurchaseOrder: OrderResult | None = None


class ShapeError(BaseModel):
    Message: str
    Errors: list[str]


class TransactionOut(BaseModel):
    Kind: Literal["Purchase", "Cancel", "Receive"]
    PurchaseOrderItemId: str
    Quantity: int
    At: str
    RequestGuid: str | None


class DeliveryOut(BaseModel):
    Kind: Literal["purchase", "change", "cancellation", "reminder"]
    Channel: Literal["B2B", "FTP", "Email"]
    Format: Literal["XML", "PDF", "Excel"] | None
    Status: Literal["Pending", "Delivered", "Failed", "Unsupported"]
    Attempts: int
    Error: str | None
    Target: str
    Sha256: str | None
    DeliveredAt: str | None
    NextAttemptAt: str | None
    DispatchNumber: int
    DocumentName: str | None
    PurchaseOrderItemId: str | None
    Evidence: dict[str, Any] | None


class OrderItemOut(BaseModel):
    Id: str
    ItemId: str | None
    CustomItemId: str | None
    CustomItemPricePerPiece: float | None
    DeviceId: str | None
    TotalQuantity: int
    ReceivedQuantity: int
    CancelledQuantity: int
    ExpectedDate: str | None
    Note: str | None
    LineReference: str | None
    # SPEC 8: the vendor's answer for this line (null until answered)
    ConfirmedQuantity: int | None = None
    PromisedDate: str | None = None
    ResponseStatus: Literal["Acknowledged", "Accepted", "Rejected",
                            "ConditionallyAccepted"] | None = None
    VendorOrderId: str | None = None


class ResponseOut(BaseModel):
    """SPEC 8: where the vendor's answer to the order stands."""

    Status: Literal["NotExpected", "Awaiting", "Acknowledged", "Accepted", "Rejected",
                    "ConditionallyAccepted", "Overdue"]
    DispatchNumber: int | None
    DueBy: str | None
    ReceivedAt: str | None
    VendorOrderId: str | None


class OrderDetail(BaseModel):
    Id: str
    VendorId: str
    StockName: str
    DeviceId: str | None
    Status: str
    IsConsignment: bool | None
    Reference: str | None
    Notes: str | None
    CustomIdPrefix: str | None
    CustomShipToId: str | None
    SendOptions: dict[str, Any] | None
    ShippingDate: str | None
    ReceivedByVendorDate: str | None
    TrackingNumber: str | None
    CreatedAt: str
    UpdatedAt: str
    PurchaseOrderItems: list[OrderItemOut]
    Transactions: list[TransactionOut]
    Deliveries: list[DeliveryOut]
    Response: ResponseOut
