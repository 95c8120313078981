"""Lava processes of neuro-deploy, in a package of their own.

Lava's compiler re-executes every module in the folder of a Process's module to find its
ProcessModels, so this folder holds nothing but them.
"""
