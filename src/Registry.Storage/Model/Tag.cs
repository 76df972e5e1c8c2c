using System.Diagnostics.CodeAnalysis;

namespace Registry.Storage.Model;

/// <summary>A tag: <c>[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}</c> (spec: distribution-spec spec.md#pulling-manifests).</summary>
public readonly record struct Tag
{
    public const int MaxLength = 128;

    private Tag(string value) => Value = value;

    public string Value { get; }

    public override string ToString() => Value;

    public static bool TryParse([NotNullWhen(true)] string? value, out Tag tag)
    {
        tag = default;
        if (string.IsNullOrEmpty(value) || value.Length > MaxLength) return false;
        if (!(char.IsAsciiLetterOrDigit(value[0]) || value[0] == '_')) return false;
        foreach (var c in value.AsSpan(1))
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('.' or '_' or '-')) return false;
        tag = new Tag(value);
        return true;
    }
}

/// <summary>A manifest reference: a tag or a digest.</summary>
public readonly record struct Reference
{
    private Reference(Tag? tag, Digest? digest)
    {
        Tag = tag;
        Digest = digest;
    }

    public Tag? Tag { get; }
    public Digest? Digest { get; }
    public bool IsDigest => Digest is not null;

    public override string ToString() => IsDigest ? Digest!.Value.ToString() : Tag!.Value.ToString();

    public static Reference Of(Tag tag) => new(tag, null);
    public static Reference Of(Digest digest) => new(null, digest);

    /// <summary>A reference with a colon is a digest, otherwise a tag.</summary>
    public static bool TryParse([NotNullWhen(true)] string? value, out Reference reference)
    {
        reference = default;
        if (value is null) return false;
        if (value.Contains(':'))
        {
            if (!Model.Digest.TryParse(value, out var digest)) return false;
            reference = Of(digest);
            return true;
        }
        if (!Model.Tag.TryParse(value, out var tag)) return false;
        reference = Of(tag);
        return true;
    }
}
