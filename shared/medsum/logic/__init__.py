"""Domain logic: takes and returns models, talks to the outside world only through ports."""
