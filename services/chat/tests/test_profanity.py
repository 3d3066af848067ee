"""The fast profanity check (a set lookup per word, a regex only for phrases) answers exactly as
the reference alternation over the whole better_profanity list."""

from chat_service.messages import service as m


def _reference(text: str) -> bool:
    lowered = text.lower()
    pattern = m._profanity_pattern()
    return bool(pattern.search(lowered) or pattern.search(lowered.translate(m._LEET)))


def test_the_fast_check_agrees_with_the_reference_on_every_listed_word():
    samples = ["hello world, this is a chat message", "well sh1t", "a classic assessment", "$hit happens",
               "bull  shit", "2 girls 1 cup!", "f.u.c.k", "message 455 of", "ok"]
    for word in m._profanity_words():
        samples += [word, f"say {word} now", f"x{word}", f"{word}y", f"({word.upper()})", f"{word}-{word}"]
    disagree = [s for s in samples if m.contains_profanity(s) != _reference(s)]
    assert disagree == []
    assert sum(map(m.contains_profanity, samples)) > len(m._profanity_words())  # it does find them
