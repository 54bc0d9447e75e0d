USAGE = ""
FLAGS = []


def run(ctx, opts, args):
    from pyrunc import fastjson as json
    import sys
    from pyrunc.features import features
    sys.stdout.write(json.dumps(features(), indent=4) + "\n")
    return 0
