"""A stand-in for the parts of CompressAI the exporter's tests use
(CompressAI itself is not installable here): GDN, GDN1, their
NonNegativeParametrizer and LowerBound, and EntropyBottleneck, written for
these tests from the published formulas with CompressAI's module paths,
class names, parameter names and state_dict layout, so that the exporter
recognises them as it recognises CompressAI's own. The tests put this folder
at the end of sys.path: an installed CompressAI takes precedence."""
