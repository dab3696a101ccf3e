"""Forms of the manager's campaign set-up page."""

from __future__ import annotations

from django import forms

from annotation.models import LabelClass, Project, Role
from annotation.models.projects import CAMPAIGN_SETTINGS


class CampaignForm(forms.ModelForm):
    """The campaign's settings; every default is stated beside its field."""

    class Meta:
        model = Project
        fields = [
            "name",
            "description",
            "target_mpp",
            *CAMPAIGN_SETTINGS,
        ]
        widgets = {
            "guidelines": forms.Textarea(attrs={"rows": 6}),
            "description": forms.Textarea(attrs={"rows": 2}),
            "license_text": forms.Textarea(attrs={"rows": 2}),
            "citation": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            default = Project._meta.get_field(name).default
            if default is not None and not callable(default) and default != "":
                field.help_text = f"{field.help_text} Default: {default}.".strip()

    def clean(self) -> dict:
        data = super().clean()
        if (
            data.get("redundancy_k")
            and data.get("redundancy_k_max")
            and data["redundancy_k"] > data["redundancy_k_max"]
        ):
            self.add_error("redundancy_k_max", "must be at least the redundancy k")
        return data


class LabelClassForm(forms.ModelForm):
    class Meta:
        model = LabelClass
        fields = ["name", "color", "order", "is_background", "shortcut"]
        widgets = {"color": forms.TextInput(attrs={"type": "color"})}


class InviteForm(forms.Form):
    file = forms.FileField(
        help_text=f"CSV with columns username,email,role (role: {', '.join(Role.values)})."
    )


class SeedForm(forms.Form):
    per_slide = forms.IntegerField(min_value=1, max_value=1000, initial=10)
    seed = forms.IntegerField(min_value=0, max_value=2**32 - 1, initial=0)


class ExcludeForm(forms.Form):
    reason = forms.CharField(max_length=1000)


class ReassignForm(forms.Form):
    username = forms.CharField(max_length=150)


def refuse_decompression_bombs(upload: object) -> None:
    """Raise ValidationError for an image past Pillow's MAX_IMAGE_PIXELS.

    Pillow only warns there (and errors at twice the size); slides/apps.py turns the warning
    into an error process-wide, but a global filter can be reset by anything that manages
    warnings (test runners, ``catch_warnings`` in a library), so the intake checks locally.
    """
    import warnings

    from PIL import Image

    upload.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(upload):
                pass
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise forms.ValidationError(
            f"Upload a valid image: this one has more than {Image.MAX_IMAGE_PIXELS} pixels "
            "(a decompression bomb?)."
        ) from None
    finally:
        upload.seek(0)


class GuidelineImageForm(forms.Form):
    image = forms.ImageField(help_text="An example shown with the guidelines (PNG or JPEG).")
    caption = forms.CharField(max_length=300, required=False)

    def clean_image(self) -> object:
        image = self.cleaned_data["image"]
        refuse_decompression_bombs(image)
        return image
