"""POST buttons on an object's detail page (cancel a job, revoke a key, …), for TenantScopedAdmin."""
from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST


@dataclass(frozen=True)
class ObjectButton:
    """A POST button on a detail page: URL name suffix `name`, handled by `<name>_button`."""

    name: str
    label: str
    danger: bool = False
    shown: Callable = lambda obj: True


class ObjectButtons:
    """Detail-page buttons, each a POST to its own URL that calls `<name>_button(request, obj)`,
    which answers the object to show afterwards, or None to show the list (the object is gone).

    Mixed into a TenantScopedAdmin: a button needs the "supervise" permission on the object,
    and another tenant's object answers 404 like one that does not exist.
    """

    object_buttons: tuple[ObjectButton, ...] = ()
    change_form_template = "admin/object_buttons_change_form.html"

    def _url_name(self, suffix: str) -> str:
        return f"admin:{self.opts.app_label}_{self.opts.model_name}_{suffix}"

    def _show(self, obj) -> HttpResponseRedirect:
        if obj is None:
            return redirect(self._url_name("changelist"))
        return redirect(self._url_name("change"), obj.pk)

    def get_urls(self):
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                f"<path:object_id>/{button.name.replace('_', '-')}/",
                self.admin_site.admin_view(self._button_view(button)),
                name=f"{info}_{button.name}",
            )
            for button in self.object_buttons
        ] + super().get_urls()

    def _button_view(self, button: ObjectButton):
        handler = getattr(self, f"{button.name}_button")

        @require_POST
        def view(request, object_id):
            obj = self.get_object(request, object_id)  # 404 for another tenant's object
            if not self.has_supervise_permission(request, obj):
                raise PermissionDenied
            return self._show(handler(request, obj))

        view.__name__ = f"{button.name}_view"
        return view

    def shown_buttons(self, request, obj) -> list[dict]:
        if not self.has_supervise_permission(request, obj):
            return []
        return [
            {
                "url": reverse(self._url_name(button.name), args=[obj.pk]),
                "id": f"{self.button_id_prefix}-{button.name.replace('_', '-')}",
                "label": button.label,
                "danger": button.danger,
            }
            for button in self.object_buttons
            if button.shown(obj)
        ]

    @property
    def button_id_prefix(self) -> str:
        return self.opts.model_name

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra_context = {**(extra_context or {}), "object_buttons": self.shown_buttons(request, obj)}
        return super().change_view(request, object_id, form_url, extra_context)
