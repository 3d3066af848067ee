import pytest
from pydantic import ValidationError
from servicekit.schemas import ApiModel, no_control_chars, single_line


class Sample(ApiModel):
    display_name: str


def test_api_models_speak_camel_case_and_accept_python_names():
    assert Sample(displayName="a").model_dump(by_alias=True) == {"displayName": "a"}
    assert Sample(display_name="a").display_name == "a"


@pytest.mark.parametrize("text", ["a\x00b", "a\x1fb", "a\x7fb", "\rline"])
def test_control_characters_are_refused_everywhere(text):
    with pytest.raises(ValueError):
        no_control_chars(text)
    with pytest.raises(ValueError):
        single_line(text)


def test_multi_line_text_keeps_newlines_and_tabs_single_line_does_not():
    assert no_control_chars("a\n\tb") == "a\n\tb"
    with pytest.raises(ValueError):
        single_line("a\nb")


def test_every_service_uses_the_one_api_model():
    # five services had each copied the class; a sixth copy would drift (ApiModel is the wire shape)
    import auth_service.schemas
    import channels_service.schemas
    import chat_service.messages.models
    import media_gateway.schemas
    import streams_service.schemas

    for module in (auth_service.schemas, channels_service.schemas, chat_service.messages.models,
                   media_gateway.schemas, streams_service.schemas):
        assert module.ApiModel is ApiModel, module.__name__


def test_a_display_name_with_a_delete_character_is_refused_by_auth():
    from auth_service.users.models import ProfileUpdate

    with pytest.raises(ValidationError):
        ProfileUpdate(display_name="ada\x7f")
