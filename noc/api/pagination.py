"""Pagination used by every list endpoint: ?page=N&page_size=M (at most 500)."""

from rest_framework.pagination import CursorPagination, PageNumberPagination


class PagePagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


class TimeCursorPagination(CursorPagination):
    """For time series that grow while being read: stable pages ordered newest first."""

    page_size_query_param = "page_size"
    max_page_size = 1000
    ordering = "-time"
