// cookies: sets two cookies through the v4 `cookies` response field.
const { app } = require('@azure/functions');

app.http('cookies', {
    methods: ['GET'],
    authLevel: 'anonymous',
    handler: async () => {
        return {
            body: 'cookies set',
            cookies: [
                { name: 'session', value: 'abc 123', path: '/', httpOnly: true, sameSite: 'Lax' },
                { name: 'theme', value: 'dark', maxAge: 3600 },
            ],
        };
    },
});
