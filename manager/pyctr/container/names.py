"""Container ids and names as Docker makes them: 64 lowercase hex ids whose short form is never all
digits, names matching `^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`, automatic names adjective_surname."""
import os
import re

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")

_ADJECTIVES = (
    "admiring adoring affectionate agitated amazing angry awesome beautiful blissful bold brave busy "
    "charming clever compassionate competent condescending confident cool cranky crazy dazzling "
    "determined distracted dreamy eager ecstatic elastic elated elegant eloquent epic exciting "
    "fervent festive flamboyant focused friendly frosty funny gallant gifted goofy gracious great "
    "happy hardcore heuristic hopeful hungry infallible inspiring intelligent interesting jolly "
    "jovial keen kind laughing loving lucid magical modest musing mystifying naughty nervous nice "
    "nifty nostalgic objective optimistic peaceful pedantic pensive practical priceless quirky "
    "quizzical recursing relaxed reverent romantic sad serene sharp silly sleepy stoic strange "
    "stupefied suspicious sweet tender thirsty trusting unruffled upbeat vibrant vigilant vigorous "
    "wizardly wonderful xenodochial youthful zealous zen").split()
_SURNAMES = (
    "albattani allen almeida agnesi archimedes ardinghelli aryabhata austin babbage banach bardeen "
    "bartik bassi beaver bell benz bhabha bhaskara black blackburn blackwell bohr booth borg bose "
    "boyd brahmagupta brattain brown buck burnell cannon carson cartwright carver cerf chandrasekhar "
    "chaplygin chatelet chatterjee chebyshev cohen chaum clarke colden cori cray curie darwin davinci "
    "dewdney dhawan diffie dijkstra dirac driscoll dubinsky easley edison einstein elbakyan elgamal "
    "elion ellis engelbart euclid euler faraday feistel fermat fermi feynman franklin gagarin galileo "
    "galois ganguly gates gauss germain goldberg goldstine goldwasser golick goodall gould greider "
    "grothendieck haibt hamilton haslett hawking hellman heisenberg hermann herschel hertz heyrovsky "
    "hodgkin hofstadter hoover hopper hugle hypatia ishizaka jackson jang jemison jennings jepsen "
    "johnson joliot jones kalam kapitsa kare keldysh keller kepler khayyam khorana kilby kirch knuth "
    "kowalevski lalande lamarr lamport leakey leavitt lederberg lehmann lewin lichterman liskov "
    "lovelace lumiere mahavira margulis matsumoto maxwell mayer mccarthy mcclintock mclaren mclean "
    "mcnulty mendel mendeleev meitner meninsky merkle mestorf mirzakhani montalcini moore morse "
    "moser murdock napier nash neumann newton nightingale nobel noether northcutt noyce panini pare "
    "pascal pasteur payne perlman pike poincare poitras proskuriakova ptolemy raman ramanujan rhodes "
    "ride ritchie robinson roentgen rosalind rubin saha sammet sanderson satoshi shamir shannon "
    "shaw shirley shockley shtern sinoussi snyder solomon spence stonebraker sutherland swanson "
    "swartz swirles taussig tesla tharp thompson torvalds tu turing varahamihira vaughan villani "
    "visvesvaraya volhard wescoff wilbur wiles williams williamson wilson wing wozniak wright wu "
    "yalow yonath zhukovsky").split()


def new_id():
    """32 random bytes in hex, redrawn while the short id is all digits (it would read as a number)."""
    while True:
        cid = os.urandom(32).hex()
        if not cid[:12].isdigit():
            return cid


def random_name(retry=0):
    import random
    while True:
        name = f"{random.choice(_ADJECTIVES)}_{random.choice(_SURNAMES)}"
        if name != "boring_wozniak":  # Steve Wozniak is not boring (Docker's rule)
            break
    return name + (str(random.randint(0, 9)) if retry else "")
