from django.urls import path

from .views import StoreApi

urlpatterns = [path("store/", StoreApi.as_view(), name="store")]
