"""Placeholder until demo/reproduce land (issue 6)."""


def add_demo_arguments(p):
    pass


def add_reproduce_arguments(p):
    pass


def run_demo(args):
    raise RuntimeError("demo is not implemented yet")


def run_reproduce(args):
    raise RuntimeError("reproduce is not implemented yet")
