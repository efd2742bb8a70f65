"""Fails to import: the worker reports the load failure."""
import not_a_module_anywhere
